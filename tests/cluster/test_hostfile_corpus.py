"""Every hostfile of the corpus, read by pimpi and by the real mpirun: same verdict, same slots."""

from __future__ import annotations

import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import pytest

from pimpi.cluster import hostfile
from pimpi.cluster.launch import detect_flavor, find_mpirun, run_captured

CORPUS = Path(__file__).resolve().parent / "hostfiles"
FILES = sorted(CORPUS.glob("*.hosts"))
# ok-: Open MPI accepts the file as it is; bad-: Open MPI refuses it; fixed-: Open MPI refuses
# it (CRLF, a comment without a final newline) but pimpi run hands it a normalised copy;
# mpich-: MPICH format, converted by pimpi run (mpich-bad-: refused by pimpi).
KINDS = ("ok-", "bad-", "fixed-", "mpich-bad-", "mpich-")
_NODE = re.compile(r"^\s+(\S+): slots=(\d+) max_slots=(\d+)", re.M)


def _oracle(text: bytes) -> list[tuple[str, int, int]] | str:
    """What Open MPI's mpirun makes of a hostfile without launching anything: its nodes as
    (name, slots, max_slots), or the reason it refuses the file."""
    fd, path = tempfile.mkstemp(suffix=".hosts")
    with os.fdopen(fd, "wb") as handle:
        handle.write(text)
    try:
        proc = run_captured(  # through the launch path: a start failure is not a verdict
            [find_mpirun(), "--allow-run-as-root", "--hostfile", path, "--display", "alloc",
             "--do-not-launch", "-n", "1", "true"], timeout=60)
    finally:
        os.unlink(path)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        return " ".join(out.split())[-300:] or f"exit code {proc.returncode}"
    block = out.split("ALLOCATED NODES")[-1]
    return [(name, int(slots), int(most)) for name, slots, most in _NODE.findall(block)]


@lru_cache(maxsize=1)
def _verdicts() -> dict[str, list[tuple[str, int, int]] | str]:
    """The oracle for every corpus file and every copy pimpi hands mpirun, two at a time
    (each mpirun takes about 0.2 s; the whole corpus under 30 s on 2 cores)."""
    texts = {"probe": b"probe-node\n"}
    for path in FILES:
        texts[path.name] = path.read_bytes()
        try:
            converted = hostfile.launcher_text(hostfile.load(path), "openmpi").encode()
        except ValueError:
            continue
        if converted != texts[path.name]:
            texts[path.name + " (pimpi's copy)"] = converted
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(texts, pool.map(_oracle, texts.values())))


def _cores() -> int:
    """Slots Open MPI gives a host listed without slots= (its core count)."""
    probe = _verdicts()["probe"]
    assert isinstance(probe, list) and len(probe) == 1, probe
    return probe[0][1]


def _pimpi_nodes(parsed: hostfile.Hostfile) -> list[tuple[str, int, int]]:
    bare = 1 if parsed.fmt == "mpich" else _cores()  # MPICH: one process; Open MPI: the cores
    return [(e.node, bare if e.slots is None else e.slots, e.max_slots or 0) for e in parsed.entries]


def _have_openmpi() -> bool:
    try:
        return detect_flavor(find_mpirun()) == "openmpi"
    except ValueError:
        return False


def test_corpus_covers_every_case():
    kinds = [next(k for k in KINDS if p.name.startswith(k)) for p in FILES]
    assert len(FILES) >= 50
    assert {k: kinds.count(k) for k in KINDS} == {k: kinds.count(k) for k in KINDS if kinds.count(k) >= 2}


@pytest.mark.timeout(300)
@pytest.mark.skipif(not _have_openmpi(), reason="needs Open MPI's mpirun")
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_pimpi_reads_the_hostfile_as_open_mpi_does(path):
    kind = next(k for k in KINDS if path.name.startswith(k))
    raw = _verdicts()[path.name]
    try:
        parsed = hostfile.load(path)
    except ValueError as exc:
        assert kind in ("bad-", "mpich-bad-"), f"pimpi refuses {path.name}: {exc}"
        assert re.match(rf"{re.escape(str(path))}(:\d+)?: .*, got '", str(exc)) or "no hosts" in str(exc), exc
        if kind == "bad-":
            assert isinstance(raw, str), f"Open MPI accepts {path.name} as {raw}, pimpi refuses: {exc}"
        return
    assert kind in ("ok-", "fixed-", "mpich-"), f"pimpi accepts {path.name}, expected a refusal"
    mine = _pimpi_nodes(parsed)
    if kind == "ok-":
        assert raw == mine, f"Open MPI reads {path.name} as {raw}, pimpi as {mine}"
        return
    # fixed- and mpich-: Open MPI refuses or misreads the file itself, pimpi run converts it.
    assert raw != mine, f"Open MPI reads {path.name} as pimpi does: it should be an ok- file"
    assert parsed.fmt == "mpich" or parsed.warnings, "a file plain mpirun refuses needs a warning"
    copy = _verdicts()[path.name + " (pimpi's copy)"]
    assert copy == mine, f"Open MPI reads pimpi's copy of {path.name} as {copy}, pimpi as {mine}"
