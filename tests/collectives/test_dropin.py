"""`collectives run`: an unmodified mpi4py script on pimpi's algorithms, under real mpirun."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

SCRIPT = '''
import numpy as np
from mpi4py import MPI
comm = MPI.COMM_WORLD
x = np.arange(6, dtype="d") * (comm.rank + 1)
y = np.empty_like(x)
comm.Allreduce(x, y, op=MPI.SUM)
comm.Allreduce(MPI.IN_PLACE, x, op=MPI.MAX)
got = np.zeros(comm.size, "i")
comm.Allgather([np.array([comm.rank], "i"), MPI.INT], [got, MPI.INT])
counts = [r + 1 for r in range(comm.size)]
whole = np.zeros(sum(counts))
comm.Allgatherv(np.full(comm.rank + 1, float(comm.rank)), [whole, counts])
want = np.concatenate([np.full(r + 1, float(r)) for r in range(comm.size)])
p = comm.size
ok = (np.array_equal(y, np.arange(6) * p * (p + 1) / 2) and np.array_equal(x, np.arange(6) * p)
      and list(got) == list(range(p)) and np.array_equal(whole, want))
print(f"rank {comm.rank} {type(comm).__module__} {'OK' if ok else 'WRONG'}")
'''



@pytest.mark.timeout(200)
def test_collectives_run_swaps_comm_world_and_traces(tmp_path, pimpi_cli):
    script, svg = tmp_path / "user.py", tmp_path / "t.svg"
    script.write_text(SCRIPT)
    proc = pimpi_cli("run", "-n", "3", "--timeout", "120", "--", "collectives", "run", "-a", "ring",
                  "--counts", "--trace", str(svg), str(script))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("pimpi.collectives.comm OK") == 3, proc.stdout
    assert "Allgatherv" in proc.stderr and "refused    0" in proc.stderr, proc.stderr
    arrows = [e for e in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}line")
              if e.get("class") == "msg"]
    assert len(arrows) > 0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args,word", [
    (["-a", "nosuch"], "--algorithm nosuch"),
    (["-a", "allreduce=linear"], "allreduce has"),
    (["--trace", "t.txt"], ".svg, .png or .json"),
])
def test_collectives_run_refuses_bad_options_in_one_line(tmp_path, args, word, pimpi_cli):
    script = tmp_path / "user.py"
    script.write_text(SCRIPT)
    proc = pimpi_cli("run", "-n", "2", "--timeout", "60", "--", "collectives", "run", *args, str(script))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count(word) == 1 and "Traceback" not in proc.stderr, proc.stderr
