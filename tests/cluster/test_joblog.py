"""What `pimpi run` reads in the launcher's output: lost nodes named, launcher noise dropped.
The texts are Open MPI 5's own, recorded on the virtual cluster (a node killed, a cable cut)."""

from __future__ import annotations

import io
from pathlib import Path

from pimpi.cluster import launch
from pimpi.cluster.joblog import KEEPALIVE_ENV, JobLog

TEXTS = Path(__file__).with_name("launcher_output")


def _feed(*chunks: bytes) -> tuple[JobLog, bytes]:
    log, sink = JobLog(), io.BytesIO()
    log.feed(io.BytesIO(b"".join(chunks)).readlines(), sink)
    return log, sink.getvalue()


def test_a_killed_nodes_daemon_box_names_the_node_and_passes_through():
    text = (TEXTS / "daemon_failed_after_kill.txt").read_bytes()
    log, out = _feed(b"frame 1\n", text, b"frame 2\n")
    assert log.lost == ["rel3"]
    assert out == b"frame 1\n" + text + b"frame 2\n"  # nothing the user should see is dropped


def test_a_cut_nodes_lost_communication_box_names_the_node_and_its_stray_nul_is_dropped():
    text = (TEXTS / "lost_daemon_after_cut.txt").read_bytes()
    log, out = _feed(text, b"\x00")  # prterun ends this box with a NUL and no line end
    assert log.lost == ["rel3"]
    assert out == text


def test_a_rank_failing_is_not_a_lost_node():
    log, out = _feed(b"Traceback (most recent call last):\n", (TEXTS / "nonzero_status_box.txt").read_bytes())
    assert log.lost == [] and b"exited with non-zero status" in out  # nobody said why: the box stays


def test_the_exit_status_box_is_dropped_when_a_rank_said_why_in_one_line():
    box = (TEXTS / "nonzero_status_box.txt").read_bytes()
    log, out = _feed(b"Error: Invalid value for '-n': 0 is not in the range x>=1.\n", box)
    assert out == b"Error: Invalid value for '-n': 0 is not in the range x>=1.\n"
    _, usage = _feed(box.replace(b"Exit code:    3", b"Exit code:    2"))  # pimpi's usage exit
    assert usage == b""


def test_the_setpgid_warning_of_every_virtual_cluster_run_is_dropped():
    _, out = _feed(b"[rel1:02621] plm:ssh: Warning: setpgid(2625,2625) failed in parent with "
                   b"errno=Permission denied(13)\n", b"rank 0 rel1\n")
    assert out == b"rank 0 rel1\n"


def test_a_box_left_open_at_the_end_is_passed_on():
    _, out = _feed(b"-" * 30 + b"\n", b"a table row\n")
    assert out == b"-" * 30 + b"\na table row\n"


def test_mpirun_gets_keepalives_unless_the_user_set_them():
    env = launch.mpi_env({"PATH": "/usr/bin", "PRTE_MCA_oob_tcp_keepalive_time": "60"})
    assert env["PRTE_MCA_oob_tcp_keepalive_time"] == "60"
    assert env["PRTE_MCA_oob_tcp_keepalive_probes"] == KEEPALIVE_ENV["PRTE_MCA_oob_tcp_keepalive_probes"]
    assert int(KEEPALIVE_ENV["PRTE_MCA_oob_tcp_keepalive_time"]) + int(
        KEEPALIVE_ENV["PRTE_MCA_oob_tcp_keepalive_intvl"]) * int(KEEPALIVE_ENV["PRTE_MCA_oob_tcp_keepalive_probes"]) <= 60


def test_a_box_saying_the_first_failing_process_exited_2_marks_a_usage_exit():
    box = (TEXTS / "nonzero_status_box.txt").read_bytes()
    assert not _feed(box)[0].usage_exit  # exit code 3: a runtime failure
    assert _feed(box.replace(b"Exit code:    3", b"Exit code:    2"))[0].usage_exit
