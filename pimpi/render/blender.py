"""`pimpi render blender`: a .blend file's frames as a `render cmd` job (CmdJob) for Blender.

Before any work, rank 0 asks Blender itself (background mode, `--disable-autoexec`, the
`INFO_SCRIPT` below) for the scene's frame range, output size, format and engine, the
files it needs (images, linked libraries, sequencer media) and whether it carries Python
(text blocks, drivers). Every bad input stops all ranks together with one line.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pimpi.procs import run_process
from pimpi.render.cmd import CmdJob, CmdResult, Template, find_program, parse_expect, run_cmd

__all__ = ["BLENDER", "INFO_SCRIPT", "SceneInfo", "check_blend_file", "read_scene", "blender_argv",
           "BlenderJob", "run_blender"]

BLENDER = "blender"
EXPECT = "frame_{frame:04d}.png"
_MAGICS = (b"BLENDER", b"\x1f\x8b", b"\x28\xb5\x2f\xfd")  # plain, gzip, zstd (Blender >= 3.0)
_MARK = "PIMPI-BLEND-INFO "

# Runs inside Blender: prints one line `PIMPI-BLEND-INFO {json}` and nothing else of ours.
INFO_SCRIPT = r"""
import bpy, json, os
scene = bpy.context.scene
r = scene.render
need = []
def want(kind, name, path):
    if path and not os.path.exists(bpy.path.abspath(path)):
        need.append([kind, name, bpy.path.abspath(path)])
for lib in bpy.data.libraries:
    want("linked library", lib.name, lib.filepath)
for img in bpy.data.images:
    if img.source in ("FILE", "SEQUENCE", "MOVIE") and not img.packed_file:
        want("image", img.name, img.filepath)
strips = 0
if scene.sequence_editor:
    for s in scene.sequence_editor.sequences_all:
        strips += 1
        if s.type == "IMAGE" and len(s.elements):
            want("sequencer image", s.name, os.path.join(s.directory, s.elements[0].filename))
        elif s.type in ("MOVIE", "SOUND"):
            want("sequencer " + s.type.lower(), s.name, getattr(s, "filepath", "") or getattr(getattr(s, "sound", None), "filepath", ""))
drivers = []
for coll in (bpy.data.objects, bpy.data.materials, bpy.data.meshes, bpy.data.scenes, bpy.data.worlds,
             bpy.data.lights, bpy.data.cameras, bpy.data.shape_keys, bpy.data.node_groups):
    for block in coll:
        ad = getattr(block, "animation_data", None)
        if ad and any(d.driver.type == "SCRIPTED" for d in ad.drivers):
            drivers.append(block.name)
pct = r.resolution_percentage
print("PIMPI-BLEND-INFO " + json.dumps({
    "scene": scene.name, "start": scene.frame_start, "end": scene.frame_end, "step": scene.frame_step,
    "width": r.resolution_x * pct // 100, "height": r.resolution_y * pct // 100,
    "format": r.image_settings.file_format, "engine": r.engine, "strips": strips,
    "sequencer": bool(strips) and r.use_sequencer,
    "texts": [t.name for t in bpy.data.texts], "drivers": drivers, "missing": need,
    "version": bpy.app.version_string}), flush=True)
"""


@dataclass(frozen=True)
class SceneInfo:
    """What Blender says about the file's active scene."""

    scene: str
    start: int
    end: int
    step: int
    width: int
    height: int
    format: str
    engine: str
    strips: int
    sequencer: bool
    texts: tuple[str, ...]
    drivers: tuple[str, ...]
    missing: tuple[tuple[str, str, str], ...]
    version: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SceneInfo":
        return cls(**{**data, "texts": tuple(data["texts"]), "drivers": tuple(data["drivers"]),
                      "missing": tuple(tuple(m) for m in data["missing"])})

    def scripts_note(self) -> str:
        """'' or one line saying which Python the file carries (never run unless allowed)."""
        parts = []
        if self.texts:
            parts.append(f"text blocks {', '.join(self.texts[:3])}" + (", ..." if len(self.texts) > 3 else ""))
        if self.drivers:
            parts.append(f"Python drivers on {', '.join(self.drivers[:3])}" + (", ..." if len(self.drivers) > 3 else ""))
        return "the file contains Python (" + "; ".join(parts) + ")" if parts else ""


def check_blend_file(path: Path) -> None:
    """ValueError naming `path` when it is missing, not a file, or not a .blend file."""
    if not path.exists():
        raise ValueError(f"{str(path)!r}: no such file")
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is not a file")
    with open(path, "rb") as handle:
        head = handle.read(7)
    if not any(head.startswith(m) for m in _MAGICS):
        raise ValueError(f"{str(path)!r} is not a .blend file (no Blender header)")


def read_scene(path: Path, blender: str = BLENDER, timeout: float = 120.0) -> SceneInfo:
    """Ask Blender (background, factory settings, no auto-run scripts) about `path`.

    ValueError when Blender cannot read it; the file's own Python is never run here.
    """
    argv = [blender, "-b", "--factory-startup", "--disable-autoexec", str(path),
            "--python-expr", INFO_SCRIPT]
    res = run_process(argv, timeout=timeout, tail_lines=200)
    if res.timed_out:
        raise ValueError(f"Blender took over {timeout:g} s to read {str(path)!r}")
    for line in (res.tail or "").splitlines():
        if line.startswith(_MARK):
            return SceneInfo.from_json(json.loads(line[len(_MARK):]))
    last = (res.tail or "").strip().splitlines()[-1:] or ["no output"]
    raise ValueError(f"Blender cannot read {str(path)!r}: {last[0]}")


def blender_argv(blend: Path, threads: int, allow_scripts: bool, blender: str = BLENDER) -> list[str]:
    """The per-chunk command: frames {start}..{end} of `blend` as PNGs into {out}."""
    scripts = "--enable-autoexec" if allow_scripts else "--disable-autoexec"
    return [blender, "-b", "--factory-startup", scripts, str(blend), "-o", "{out}/frame_####", "-F", "PNG",
            "-x", "1", "-t", str(threads), "-s", "{start}", "-e", "{end}", "-j", "1", "-a"]


@dataclass
class BlenderJob:
    """What `pimpi render blender` was asked for; frames None means the scene's range."""

    blend: Path
    out_dir: Path
    frames: list[int] | None = None
    chunk_size: int = 1
    threads: int = 0
    allow_scripts: bool = False
    retries: int = 0
    task_timeout: float | None = None
    collect: bool = False
    force: bool = False


def _frames_in_scene(frames: list[int] | None, info: SceneInfo) -> list[int]:
    if frames is None:
        return list(range(info.start, info.end + 1))
    outside = [f for f in frames if not info.start <= f <= info.end]
    if outside:
        raise ValueError(f"--frames: frame {outside[0]} is outside scene {info.scene!r} "
                         f"(frames {info.start}-{info.end})")
    return frames


def _inspect(job: BlenderJob) -> tuple[str, Any]:
    """Rank 0: ('', SceneInfo) or (problem, None)."""
    try:
        check_blend_file(job.blend)
        info = read_scene(job.blend)
    except ValueError as exc:
        return str(exc), None
    if info.missing:
        kind, name, path = info.missing[0]
        more = f" (and {len(info.missing) - 1} more)" if len(info.missing) > 1 else ""
        return f"{job.blend.name}: {kind} {name!r} is missing: {path}{more}", None
    return "", info


def prepare(comm: Any, job: BlenderJob) -> tuple[SceneInfo, CmdJob]:
    """Collective: Blender on every rank, the file read on rank 0, the CmdJob to run.

    ValueError (on every rank alike) for any bad input; nothing is written.
    """
    from pimpi.mpi import agree, root_decides

    found = find_program(BLENDER)
    agree(comm, "" if found else f"blender not found on PATH of host {socket.gethostname()}")
    problem, info = _inspect(job) if comm.rank == 0 else ("", None)
    problem, info = root_decides(comm, (problem, info))
    if problem:
        raise ValueError(problem)
    frames = _frames_in_scene(job.frames, info)
    cmd = CmdJob(template=Template.parse(blender_argv(job.blend.resolve(), job.threads, job.allow_scripts)),
                 expect=parse_expect([EXPECT]), out_dir=job.out_dir, frames=frames, chunk_size=job.chunk_size,
                 retries=job.retries, task_timeout=job.task_timeout, collect=job.collect, force=job.force,
                 image_size=(info.width, info.height))
    return info, cmd


def run_blender(comm: Any, job: BlenderJob,
                progress: Callable[[int, int], None] | None = None) -> tuple[SceneInfo, CmdJob, CmdResult]:
    """Render `job` across `comm` (collective) through `run_cmd`."""
    info, cmd = prepare(comm, job)
    if comm.rank == 0:
        note = info.scripts_note()
        if note:
            how = "allowed by --allow-scripts" if job.allow_scripts else "not run: --disable-autoexec"
            print(f"note: {note}; {how}", flush=True)
    return info, cmd, run_cmd(comm, cmd, progress=progress)
