"""`pimpi render blender` end to end with the real Blender (real mpirun): same pixels as Blender
alone, resume after a kill, scripts never run unless allowed, every bad input refused."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from pimpi.journal import JOURNAL_NAME
from pimpi.testing import marked_processes

pytestmark = pytest.mark.skipif(shutil.which("blender") is None and os.environ.get("CI") != "true",
                                reason="needs blender (apt install blender)")

FRAMES = range(1, 9)
# Builds the test files inside Blender: a keyframed cube, a camera and a sun, 8 frames at
# 128x72 at 50 % (64x36), Cycles on the CPU with 2 samples and no denoising. Saves
# cube.blend, then scripted.blend (+ an auto-run text block writing MARKER), then
# texture.blend (+ an image whose file does not exist).
MAKE = r"""
import bpy, sys
folder, marker = sys.argv[sys.argv.index("--") + 1:]
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 2
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 128, 72, 50
scene.frame_start, scene.frame_end = 1, 8
bpy.ops.mesh.primitive_cube_add(size=1.5)
cube = bpy.context.object
cube.rotation_euler = (0, 0, 0)
cube.keyframe_insert("rotation_euler", frame=1)
cube.rotation_euler = (0.5, 0.3, 1.6)
cube.keyframe_insert("rotation_euler", frame=8)
bpy.ops.object.camera_add(location=(4, -4, 3), rotation=(1.1, 0, 0.785))
scene.camera = bpy.context.object
bpy.ops.object.light_add(type="SUN", location=(2, -2, 5))
bpy.ops.wm.save_as_mainfile(filepath=folder + "/cube.blend")
text = bpy.data.texts.new("setup.py")
text.write("open(%r, 'w').write('ran')\n" % marker)
text.use_module = True
bpy.ops.wm.save_as_mainfile(filepath=folder + "/scripted.blend")
bpy.data.texts.remove(text)
image = bpy.data.images.new("wood", 4, 4)
image.filepath = "//wood-missing.png"
image.source = "FILE"
image.use_fake_user = True
bpy.ops.wm.save_as_mainfile(filepath=folder + "/texture.blend")
# a video edit: one image strip showing still.png for frames 1-8 (and one whose image is gone)
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 36, 100
scene.frame_start, scene.frame_end = 1, 8
strip = scene.sequence_editor_create().sequences.new_image("still", folder + "/still.png", channel=1, frame_start=1)
strip.frame_final_duration = 8
bpy.ops.wm.save_as_mainfile(filepath=folder + "/edit.blend")
strip.elements[0].filename = "gone.png"
bpy.ops.wm.save_as_mainfile(filepath=folder + "/edit-missing.blend")
"""


def _pimpi(args: list[str], ranks: int | None, cwd: Path, timeout: float = 240,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    launcher = ["run", "-n", str(ranks), "--timeout", str(timeout - 20), "--"] if ranks else []
    return subprocess.run([sys.executable, "-m", "pimpi", *launcher, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image)


@pytest.fixture(scope="module")
def blends(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("blend")
    script = folder / "make.py"
    script.write_text(MAKE)
    from pimpi.render.png import write_png

    ramp = np.linspace(0, 255, 64 * 36 * 3).astype(np.uint8).reshape(36, 64, 3)
    write_png(folder / "still.png", ramp)
    subprocess.run(["blender", "-b", "--factory-startup", "--python", str(script), "--", str(folder),
                    str(folder / "MARKER")], check=True, capture_output=True, timeout=240)
    return folder


def test_three_ranks_collected_equal_blenders_own_render(blends, tmp_path):
    """Pixel-identical: Cycles on the CPU with a fixed seed gave the same bytes of pixels at
    1 and 2 threads and per chunk on this machine (measured), so no tolerance is used."""
    ref = tmp_path / "ref"
    subprocess.run(["blender", "-b", "--factory-startup", "--disable-autoexec", str(blends / "cube.blend"),
                    "-o", f"{ref}/frame_####", "-F", "PNG", "-x", "1", "-t", "2", "-a"],
                   check=True, capture_output=True, timeout=240)
    proc = _pimpi(["render", "blender", str(blends / "cube.blend"), "--out", "out", "--chunk", "2",
                   "--threads", "1", "--collect", "--video", "cube.mp4"], 3, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Scene: frames 1-8 at 64x36, CYCLES" in proc.stdout
    assert "rendered 4 of 4 chunks on 3 ranks" in proc.stdout
    for f in FRAMES:
        ours, theirs = _pixels(tmp_path / "out" / f"frame_{f:04d}.png"), _pixels(ref / f"frame_{f:04d}.png")
        assert ours.shape[:2] == (36, 64) and ours.std() > 10  # a picture, not a blank
        assert np.array_equal(ours, theirs), f"frame {f} differs by up to {np.abs(ours.astype(int) - theirs).max()}"
    assert (tmp_path / "cube.mp4").stat().st_size > 0


def test_sequencer_project_renders_as_blender_does(blends, tmp_path):
    ref = tmp_path / "ref"
    subprocess.run(["blender", "-b", "--factory-startup", "--disable-autoexec", str(blends / "edit.blend"),
                    "-o", f"{ref}/frame_####", "-F", "PNG", "-x", "1", "-a"], check=True, capture_output=True,
                   timeout=240)
    proc = _pimpi(["render", "blender", str(blends / "edit.blend"), "--out", "out", "--chunk", "3",
                   "--threads", "1"], 2, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "video sequencer (1 strip)" in proc.stdout
    for f in FRAMES:
        ours = _pixels(tmp_path / "out" / f"frame_{f:04d}.png")
        assert ours.shape[:2] == (36, 64) and ours.std() > 10
        assert np.array_equal(ours, _pixels(ref / f"frame_{f:04d}.png")), f"frame {f}"


def _journaled(out: Path) -> list[str]:
    import json

    path = out / JOURNAL_NAME
    if not path.exists():
        return []
    keys = []
    for line in path.read_text().splitlines():
        try:
            keys.append(json.loads(line)["key"])
        except (ValueError, KeyError):
            pass
    return keys


@pytest.mark.timeout(400)
def test_killed_job_rerun_redoes_no_finished_frame(blends, tmp_path):
    blend = tmp_path / "kill-test.blend"
    shutil.copy(blends / "cube.blend", blend)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "pimpi", "run", "-n", "2", "--timeout", "200", "--", "render", "blender",
            str(blend), "--out", str(out), "--threads", "1"]
    marker = f"PIMPI_TEST_BLENDER={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=env)
    deadline = time.monotonic() + 200
    while len(_journaled(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    done = _journaled(out)
    assert 2 <= len(done) < 8, f"kill came too late or too early: {done}"
    deadline = time.monotonic() + 30
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marked_processes(marker) == []  # mpirun, ranks and every blender ended
    stamps = {k: (out / f"frame_{int(k):04d}.png").stat().st_mtime_ns for k in done}
    again = _pimpi(["render", "blender", str(blend), "--out", str(out), "--threads", "1"], 2, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"rendered {8 - len(done)} of 8 chunks" in again.stdout
    assert f"{len(done)} already done (journal)" in again.stdout
    assert all((out / f"frame_{int(k):04d}.png").stat().st_mtime_ns == stamps[k] for k in done)
    assert sorted(p.name for p in out.glob("frame_*")) == [f"frame_{f:04d}.png" for f in FRAMES]


def test_file_python_is_named_and_never_run_unless_allowed(blends, tmp_path):
    marker = blends / "MARKER"
    proc = _pimpi(["render", "blender", str(blends / "scripted.blend"), "--out", "out", "--frames", "1",
                   "--threads", "1"], None, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "note: the file contains Python (text blocks setup.py); not run: --disable-autoexec" in proc.stdout
    assert not marker.exists()
    allowed = _pimpi(["render", "blender", str(blends / "scripted.blend"), "--out", "out2", "--frames", "1",
                      "--threads", "1", "--allow-scripts"], None, tmp_path)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert marker.read_text() == "ran"
    marker.unlink()


def _no_blender_env(tmp_path: Path) -> dict[str, str]:
    """PATH with everything of /usr/bin but blender (mpirun and python are called by full path)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "env", "hostname"):
        if shutil.which(tool):
            os.symlink(shutil.which(tool), bin_dir / tool)
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{bin_dir}"}


@pytest.mark.parametrize("case, message", [
    ("text", "is not a .blend file"),
    ("missing", "no such file"),
    ("texture", "image 'wood' is missing: "),
    ("strip", "sequencer image 'still' is missing: "),
    ("range", "--frames: frame 9 is outside scene 'Scene' (frames 1-8)"),
    ("noblender", "blender not found on PATH of host"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(blends, tmp_path, case, message):
    work = tmp_path / "work"
    work.mkdir()
    blend, frames, env = blends / "cube.blend", ["--frames", "1-8"], None
    if case == "text":
        blend = work / "notes.blend"
        blend.write_text("not a blend file\n")
    elif case == "missing":
        blend = work / "nowhere.blend"
    elif case == "texture":
        blend = blends / "texture.blend"
    elif case == "strip":
        blend = blends / "edit-missing.blend"
    elif case == "range":
        frames = ["--frames", "4-9"]
    else:
        env = _no_blender_env(tmp_path)
    before = sorted(os.listdir(work))
    proc = _pimpi(["render", "blender", str(blend), "--out", "out", *frames], 2, work, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(os.listdir(work)) == before  # no output folder, no journal
