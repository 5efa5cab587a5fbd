"""`render cmd` pieces without MPI: templates, expected files, complete-PNG checks."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pimpi.render.cmd import (
    Template,
    check_output_file,
    expected_files,
    pack_files,
    parse_expect,
    unpack_files,
)
from pimpi.render.cli import cmd


def _png_bytes(width: int = 5, height: int = 3) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_template_runs_once_per_chunk_without_frame():
    t = Template.parse(["povray", "+Is.pov", "+O{out}/f.png", "+SF{start}", "+EF{end:03d}"])
    assert not t.per_frame
    assert t.commands([4, 5, 6], "/tmp/x") == [["povray", "+Is.pov", "+O/tmp/x/f.png", "+SF4", "+EF006"]]


def test_template_with_frame_runs_once_per_frame_and_keeps_tokens_whole():
    t = Template.parse(["blender", "-b", "my scene.blend", "-o", "{out}/#### ; rm -rf ~", "-f", "{frame:04d}"])
    assert t.per_frame
    runs = t.commands([7, 8], "/o")
    assert [r[-1] for r in runs] == ["0007", "0008"]
    assert runs[0][2] == "my scene.blend" and runs[0][4] == "/o/#### ; rm -rf ~"  # no shell, no splitting


def test_template_literal_braces():
    t = Template.parse(["tool", "{{json}}", "{out}"])
    assert t.commands([1], "o")[0] == ["tool", "{json}", "o"]


@pytest.mark.parametrize(
    "argv, named",
    [
        (["r", "{out}", "{frme}"], "{frme}"),
        (["r", "{out}", "{frame.real}"], "{frame.real}"),
        (["r", "{out}", "{}"], "{}"),
        (["r", "{out}", "{frame:q}"], "{frame:q}"),
        (["r", "{out", "x"], "'{out'"),
        (["{frame}", "{out}"], "renderer name"),
        (["r", "+Oout.png"], "{out}"),
        ([], "no renderer"),
    ],
)
def test_template_errors_name_the_problem(argv, named):
    with pytest.raises(ValueError) as info:
        Template.parse(argv)
    assert named in str(info.value)


def test_expect_patterns():
    assert parse_expect(["f_{frame:04d}.png"]) == ("f_{frame:04d}.png",)
    for bad, named in [("/abs/{frame}.png", "relative"), ("../{frame}.png", "relative"),
                       ("{out}/x.png", "{out}"), ("{nope}.png", "{nope}")]:
        with pytest.raises(ValueError, match="relative|unknown") as info:
            parse_expect([bad])
        assert named in str(info.value) or "relative" in str(info.value)
    with pytest.raises(ValueError, match="--expect"):
        parse_expect([])


def test_expected_files_per_frame_and_per_chunk():
    got = expected_files(["f{frame:02d}.png", "sub/chunk_{start}-{end}.log"], [3, 4])
    assert got == {3: ["f03.png", "sub/chunk_3-4.log"], 4: ["f04.png", "sub/chunk_3-4.log"]}


def test_check_output_file(tmp_path):
    good = _png_bytes()
    (tmp_path / "ok.png").write_bytes(good)
    (tmp_path / "cut.png").write_bytes(good[:-12])  # IEND missing: a frame still being written
    (tmp_path / "half.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "fake.png").write_bytes(b"not a png at all")
    (tmp_path / "data.exr").write_bytes(b"x")
    assert check_output_file(tmp_path / "ok.png") == ""
    assert "incomplete" in check_output_file(tmp_path / "cut.png")
    assert "incomplete" in check_output_file(tmp_path / "half.png")
    assert check_output_file(tmp_path / "empty.png") == "empty"
    assert "not a PNG" in check_output_file(tmp_path / "fake.png")
    assert check_output_file(tmp_path / "missing.png") == "missing"
    assert check_output_file(tmp_path / "data.exr") == ""


def test_check_output_file_jpeg(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "a.jpg")
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "b.jpg").write_bytes(data[: len(data) - 80])
    assert check_output_file(tmp_path / "a.jpg") == ""
    assert "incomplete JPEG" in check_output_file(tmp_path / "b.jpg")


def test_pack_round_trip(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x00\x01\x02")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_bytes(b"hello")
    array = pack_files(tmp_path, ["a.png", "sub/b.txt"])
    assert array.dtype == np.uint8
    files = {name: bytes(data) for name, data in unpack_files(array)}
    assert files == {"a.png": b"\x00\x01\x02", "sub/b.txt": b"hello"}
    with pytest.raises(ValueError):
        unpack_files(array[:-1])


_RENDERER = ["--", "ffmpeg", "-f", "lavfi", "-i", "testsrc", "{out}/f%d.png"]


@pytest.mark.parametrize(
    "frames, expect, command, named",
    [
        ("10-1", "f{frame}.png", _RENDERER, "backwards"),
        ("1-3,x", "f{frame}.png", _RENDERER, "'x'"),
        ("1-3", "f{frame}.png", ["--", "ffmpeg", "{out}/{frme}.png"], "{frme}"),
        ("1-3", "/abs/{frame}.png", _RENDERER, "relative"),
    ],
)
def test_cli_usage_errors_exit_2_and_write_nothing(tmp_path, frames, expect, command, named):
    out = tmp_path / "out"
    args = ["--frames", frames, "--expect", expect, "--out", str(out), *command]
    result = CliRunner().invoke(cmd, args)
    assert result.exit_code == 2, result.output
    assert named in result.output and "Traceback" not in result.output
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(shutil.which("povray") is None, reason="needs povray (apt install povray)")
def test_render_chunk_with_povray_renames_only_verified_frames(tmp_path):
    from pimpi.render.cmd import CmdJob, render_chunk
    from pimpi.tasks import TaskFailed

    scene = tmp_path / "anim.pov"
    shutil.copy(Path(__file__).parent / "data" / "anim.pov", scene)
    argv = ["povray", f"+I{scene}", "+O{out}/f.png", "+W32", "+H24", "+KFI1", "+KFF12",
            "+SF{start}", "+EF{end}", "-D", "-GA"]
    job = CmdJob(template=Template.parse(argv), expect=parse_expect(["f{frame:02d}.png"]),
                 out_dir=tmp_path / "out", frames=[11, 12])
    (tmp_path / "out").mkdir()
    assert render_chunk(job, [11, 12]) is None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f11.png", "f12.png"]
    assert all(check_output_file(tmp_path / "out" / n) == "" for n in ("f11.png", "f12.png"))
    assert render_chunk(job, [3]) is None and (tmp_path / "out" / "f03.png").exists()
    data = render_chunk(job, [4], pack=True)  # --collect on another rank: nothing written here
    assert [name for name, _ in unpack_files(data)] == ["f04.png"] and not (tmp_path / "out" / "f04.png").exists()

    unpadded = CmdJob(template=job.template, expect=parse_expect(["f{frame}.png"]), out_dir=job.out_dir,
                      frames=[7])
    with pytest.raises(TaskFailed, match=r"f7.png: missing \(the renderer wrote: f07.png\)"):
        render_chunk(unpadded, [7])

    scene.write_text("sphere { <0, 0, 0>, 1 pigment { rgb 1 } ")  # a parse error
    with pytest.raises(TaskFailed, match="povray: exit code"):
        render_chunk(job, [5, 6])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f03.png", "f11.png", "f12.png"]


def test_dry_run_shows_chunks_and_the_substituted_command(tmp_path):
    args = ["--dry-run", "--frames", "1-10,20", "--chunk", "4", "--out", str(tmp_path / "o"),
            "--expect", "f{frame:02d}.png", "--", "no-such-renderer-pimpi", "+O{out}/f.png", "+SF{start}", "+EF{end}"]
    result = CliRunner().invoke(cmd, args)
    assert result.exit_code == 0, result.output
    assert "11 frames in 4 chunks: 1-4, 5-8, 9-10, 20" in result.output
    assert "no-such-renderer-pimpi '+O{out}/f.png' +SF1 +EF4" in result.output
    assert "NOT FOUND" in result.output and "f01.png, f02.png, f03.png, f04.png" in result.output
    assert os.listdir(tmp_path) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("make, expect, named", [
    ('ln -s "$SECRET" "$1/f01.txt"', "f{frame:02d}.txt", "symbolic link to"),
    ('ln -s "$(dirname "$SECRET")" "$1/sub"', "sub/f{frame:02d}.txt", "'sub' is a symbolic link"),
    ('mkfifo "$1/f01.txt"', "f{frame:02d}.txt", "is a FIFO"),
    ('ln "$SECRET" "$1/f01.txt"', "f{frame:02d}.txt", "hard link to a file outside"),
])
def test_render_chunk_refuses_outputs_that_reach_outside_out(tmp_path, monkeypatch, make, expect, named):
    from pimpi.render.cmd import CmdJob, render_chunk
    from pimpi.tasks import TaskFailed

    secret = tmp_path / "private" / "f01.txt"
    secret.parent.mkdir()
    secret.write_text("top secret\n")
    monkeypatch.setenv("SECRET", str(secret))
    script = tmp_path / "render.sh"
    script.write_text(f"#!/bin/sh\n{make}\n")
    out = tmp_path / "out"
    out.mkdir()
    job = CmdJob(template=Template.parse(["sh", str(script), "{out}"]), expect=parse_expect([expect]),
                 out_dir=out, frames=[1])
    for pack in (False, True):  # rank 0 renames into --out; with --collect other ranks send bytes
        with pytest.raises(TaskFailed, match=named):
            render_chunk(job, [1], pack=pack)
    assert list(out.iterdir()) == []
    assert secret.read_text() == "top secret\n"


def test_render_chunk_accepts_hard_links_between_its_own_outputs(tmp_path):
    from pimpi.render.cmd import CmdJob, render_chunk

    script = tmp_path / "render.sh"
    script.write_text('#!/bin/sh\necho frame > "$1/f01.txt"\nln "$1/f01.txt" "$1/f02.txt"\n')
    out = tmp_path / "out"
    out.mkdir()
    job = CmdJob(template=Template.parse(["sh", str(script), "{out}"]),
                 expect=parse_expect(["f01.txt", "f02.txt"]), out_dir=out, frames=[1])
    assert render_chunk(job, [1]) is None
    assert sorted(p.name for p in out.iterdir()) == ["f01.txt", "f02.txt"]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_render_chunk_refuses_a_png_of_the_wrong_size(tmp_path):
    from pimpi.render.cmd import CmdJob, png_size, render_chunk
    from pimpi.tasks import TaskFailed

    argv = ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=32x24:rate=1",
            "-frames:v", "1", "-update", "1", "{out}/f{frame}.png"]
    job = CmdJob(template=Template.parse(argv), expect=parse_expect(["f{frame}.png"]), out_dir=tmp_path / "out",
                 frames=[1, 2], image_size=(64, 36))
    (tmp_path / "out").mkdir()
    with pytest.raises(TaskFailed, match=r"f1.png: 32x24 pixels, expected 64x36"):
        render_chunk(job, [1])
    assert list((tmp_path / "out").iterdir()) == []
    job.image_size = (32, 24)
    assert render_chunk(job, [2]) is None and png_size(tmp_path / "out" / "f2.png") == (32, 24)
