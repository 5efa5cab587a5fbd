"""The built-in scenes and schedules by name, a line on each: what the CLI offers, without NumPy."""

from __future__ import annotations

__all__ = ["SCENE_SUMMARIES", "SCHEDULES"]

# Each built-in scene (pimpi.render.scenes.SCENES holds its code) and what it shows.
SCENE_SUMMARIES: dict[str, str] = {
    "mandelbrot": "zoom into Seahorse Valley (deep frames cost more)",
    "julia": "Julia set, c once around a circle",
    "raytrace": "spheres on a plane: shadows, reflections, orbiting camera",
}

SCHEDULES = ("dynamic", "static", "block")  # how frames are split over the ranks
