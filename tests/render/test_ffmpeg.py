"""ffmpeg helpers: frames to an even-sized yuv420p video written atomically, and exact probing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pimpi.render import ffmpeg as ff


def _frames(folder: Path, numbers: range, size: tuple[int, int] = (33, 25)) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in numbers:
        path = folder / f"frame_{n:04d}.png"
        Image.new("RGB", size, (n * 7 % 256, 40, 90)).save(path)
        paths.append(path)
    return paths


def _clip(path: Path, seconds: float = 2.0, audio: bool = True, rate: str = "25") -> Path:
    args = [ff.find_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size=48x32:rate={rate}:duration={seconds:g}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds:g}", "-c:a", "aac"]
    subprocess.run([*args, "-c:v", "libx264", "-preset", "ultrafast", "-g", "12", str(path)],
                   check=True, timeout=60)
    return path


def test_find_ffmpeg_prefers_the_bundled_binary():
    exe = ff.find_ffmpeg()
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    assert exe == imageio_ffmpeg.get_ffmpeg_exe()


def test_frames_to_video_pads_odd_sizes_and_keeps_every_frame(tmp_path):
    _frames(tmp_path / "f", range(7, 19))  # 12 frames, not starting at 0 or 1
    out = ff.frames_to_video(str(tmp_path / "f" / "frame_%04d.png"), tmp_path / "v" / "clip.mp4", fps=12,
                             preset="ultrafast")
    info = ff.probe(out)
    assert (info["width"], info["height"]) == (34, 26)
    assert info["frames"] == 12 and abs(info["duration"] - 1.0) < 1e-3 and info["fps"] == 12
    assert not info["has_audio"]
    info_text = subprocess.run([ff.find_ffmpeg(), "-hide_banner", "-nostdin", "-i", str(out)],
                               capture_output=True, text=True, timeout=60).stderr
    assert "yuv420p" in info_text
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["clip.mp4"]  # no temporary left


def test_frames_to_video_from_a_list_and_a_glob(tmp_path):
    paths = _frames(tmp_path / "f", range(3), size=(16, 16))
    listed = ff.probe(ff.frames_to_video(list(reversed(paths)), tmp_path / "a.mkv", fps="30000/1001",
                                         preset="ultrafast"))
    globbed = ff.probe(ff.frames_to_video(str(tmp_path / "f" / "*.png"), tmp_path / "b.mp4", fps=3,
                                          preset="ultrafast"))
    assert listed["frames"] == 3 and abs(listed["fps"] - 29.97) < 0.01
    assert globbed["frames"] == 3 and abs(globbed["duration"] - 1.0) < 1e-3


def test_frames_to_video_refuses_bad_input_and_writes_nothing(tmp_path):
    paths = _frames(tmp_path / "f", range(2))
    with pytest.raises(ValueError, match="no frames"):
        ff.frames_to_video(str(tmp_path / "f" / "none_%04d.png"), tmp_path / "o.mp4", fps=5)
    with pytest.raises(ValueError, match="fps"):
        ff.frames_to_video(paths, tmp_path / "o.mp4", fps=0)
    with pytest.raises(ValueError, match="not found"):
        ff.frames_to_video([*paths, tmp_path / "gone.png"], tmp_path / "o.mp4", fps=5)
    with pytest.raises(ValueError, match="extension"):
        ff.frames_to_video(paths, tmp_path / "o", fps=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_failed_encode_leaves_no_output(tmp_path):
    paths = _frames(tmp_path / "f", range(2))
    with pytest.raises(ff.FFmpegError, match="ffmpeg failed"):
        ff.frames_to_video(paths, tmp_path / "o.mp4", fps=5, codec="no_such_encoder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


@pytest.mark.parametrize("use_ffprobe", [True, False], ids=["ffprobe", "ffmpeg-only"])
def test_probe_counts_frames_and_audio(tmp_path, use_ffprobe):
    if use_ffprobe and ff.find_ffprobe() is None:
        pytest.skip("no ffprobe")
    clip = _clip(tmp_path / "c.mp4", seconds=2.0)
    info = ff.probe(clip, ffprobe="auto" if use_ffprobe else None)
    assert info["frames"] == 50 and abs(info["duration"] - 2.0) <= 0.04
    assert (info["width"], info["height"], info["fps"]) == (48, 32, 25)
    assert info["has_audio"] and abs(info["audio_duration"] - 2.0) < 0.05


def test_probe_without_audio_and_bad_files(tmp_path):
    info = ff.probe(_clip(tmp_path / "c.mkv", seconds=1.0, audio=False))
    assert info["frames"] == 25 and not info["has_audio"] and info["audio_duration"] == 0.0
    with pytest.raises(ValueError, match="no such video"):
        ff.probe(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"junk")
    with pytest.raises(ff.FFmpegError):
        ff.probe(tmp_path / "junk.mp4")
