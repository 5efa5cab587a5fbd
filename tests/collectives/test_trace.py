"""Message traces without MPI: matching, rounds, critical path, drawings; and the trace CLI end to end."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from pimpi.collectives.trace import (Event, ForbiddenCall, analyse, format_bytes, format_trace, model_warning,
                                    trace_png, trace_svg)
from pimpi.fileio import atomic_write

SVG = "{http://www.w3.org/2000/svg}"


def _send(dst, nbytes=8, tag=0, t=0.0):
    return Event("S", dst, tag, nbytes, t)


def _recv(src, nbytes=8, tag=0, t=0.0):
    return Event("R", src, tag, nbytes, t)


def test_linear_bcast_puts_one_root_message_in_each_round():
    logs = [[_send(1), _send(2), _send(3)], [_recv(0)], [_recv(0)], [_recv(0)]]
    trace = analyse(logs)
    assert [m.round for m in trace.messages] == [1, 2, 3]
    assert trace.depth == 1  # no message waits for another
    assert trace.critical_path == (3, 24)  # root sends one message after another


def test_binomial_tree_rounds_are_ceil_log2_p_also_for_p_not_a_power_of_two():
    # p = 5, root 0 sends to 4, 2, 1; rank 2 forwards to 3
    logs = [[_send(4), _send(2), _send(1)], [_recv(0)], [_recv(0), _send(3)], [_recv(2)], [_recv(0)]]
    trace = analyse(logs)
    assert trace.rounds == 3 and trace.critical_path[0] == 3 and trace.depth == 2
    assert next(m.round for m in trace.messages if m.src == 2) == 3


def test_chain_rounds_follow_causality_and_linear_gather_serialises_receives():
    chain = analyse([[_send(1)], [_recv(0), _send(2)], [_recv(1), _send(3)], [_recv(2)]])
    assert [(m.src, m.round) for m in chain.messages] == [(0, 1), (1, 2), (2, 3)]
    gather = analyse([[_recv(1), _recv(2), _recv(3)], [_send(0)], [_send(0)], [_send(0)]])
    assert gather.rounds == 1 and gather.critical_path == (3, 24)


def test_same_channel_messages_match_in_order_non_overtaking():
    # rank 0 sends two messages to rank 1 on one tag; the k-th receive gets the k-th send
    logs = [[_send(1, 8, t=1.0), _send(1, 16, t=2.0)],
            [_recv(0, 8, t=3.0), _recv(0, 16, t=4.0), _send(2, 4, t=5.0)], [_recv(1, 4, t=6.0)]]
    trace = analyse(logs)
    first, second, fwd = trace.messages
    assert (first.t_recv, second.t_recv) == (3.0, 4.0)
    assert (first.round, second.round, fwd.round) == (1, 2, 3)
    assert trace.total_bytes == 28


def test_tags_keep_channels_apart():
    # rank 1 receives tag 5 first although rank 0 sent tag 4 first: both must still match
    logs = [[_send(1, 8, tag=4), _send(1, 16, tag=5)], [_recv(0, 16, tag=5), _recv(0, 8, tag=4)]]
    trace = analyse(logs)
    assert sorted(m.tag for m in trace.messages) == [4, 5]
    assert all(m.t_recv is not None for m in trace.messages)


def test_wildcard_receive_completed_in_waitall_still_finds_its_send():
    # rank 2 posted Irecv(ANY_SOURCE, ANY_TAG) and completed it in Waitall: source unknown (-1)
    logs = [[_send(2, 8, tag=9)], [_recv(2, 8)], [_recv(-1, 8, tag=-1), _send(1, 8)]]
    trace = analyse(logs)
    assert [(m.src, m.dst, m.round) for m in trace.messages] == [(0, 2, 1), (2, 1, 2)]
    assert all(m.t_recv is not None for m in trace.messages)


def test_unmatched_receive_does_not_hang_the_analysis():
    trace = analyse([[_recv(1)], [_send(2)], []])
    assert len(trace.messages) == 1 and trace.messages[0].round == 1


def test_forbidden_call_messages_name_the_fix():
    pickled = ForbiddenCall("send", "pickled")
    assert str(pickled) == "pickled send() used; this exercise asks for buffer calls (Send/Recv)"
    assert pickled.advice() == "uses pickled comm.send; use comm.Send on NumPy buffers"
    assert "Bcast" in ForbiddenCall("Bcast", "builtin").advice()


def test_format_bytes_and_diagram():
    assert format_bytes(12) == "12 B" and format_bytes(1024) == "1.0 KiB"
    assert format_bytes(3 * 1024 * 1024) == "3.0 MiB"
    trace = analyse([[_send(1, 1024)], [_recv(0, 1024), _send(2, 1024)], [_recv(1, 1024)]])
    text = format_trace(trace, "chain", prediction=(2, 2048))
    assert "round 1: 1 message" in text and "r0 -> r1  1.0 KiB" in text
    assert "round 2" in text and "r1 -> r2" in text
    assert "critical path: 2 messages, 2.0 KiB" in text and "model: 2 messages, 2.0 KiB" in text


def test_svg_is_well_formed_with_one_arrow_per_message(tmp_path):
    logs = [[_send(1), _send(2), _recv(2)], [_recv(0)], [_recv(0), _send(0)]]
    trace = analyse(logs)
    path = tmp_path / "t.svg"
    atomic_write(path, trace_svg(trace, "a <title> & more"))
    root = ET.parse(path).getroot()
    arrows = [e for e in root.iter(f"{SVG}line") if e.get("class") == "msg"]
    assert len(arrows) == len(trace.messages) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["t.svg"]  # no temporary left behind



def _ring(p, rounds, phase_names=()):
    """Logs of `rounds` ring steps (Sendrecv to the right), phase i starting at step i·k."""
    logs = [[] for _ in range(p)]
    per = rounds // max(len(phase_names), 1)
    for step in range(rounds):
        for r in range(p):
            if phase_names and step % per == 0:
                logs[r].append(Event("P", -1, -1, 0, 0.0, phase_names[step // per]))
            logs[r] += [_send((r + 1) % p), _recv((r - 1) % p)]
    return logs


def test_phases_label_their_rounds_and_a_round_is_drawn_side_by_side():
    trace = analyse(_ring(4, 6, ("reduce-scatter", "allgather")))
    assert trace.phases() == [("reduce-scatter", 1, 3), ("allgather", 4, 6)]
    assert {m.phase for m in trace.messages if m.round == 4} == {"allgather"}
    assert trace.to_dict()["phases"][1] == {"name": "allgather", "first_round": 4, "last_round": 6}
    text = format_trace(trace, "ring", prediction=(6, 48))
    assert text.index("-- reduce-scatter --") < text.index("round 1") < text.index("-- allgather --") \
        < text.index("round 4")
    root = ET.fromstring(trace_svg(trace, "ring").split("\n", 1)[1])
    arrows = [e for e in root.iter(f"{SVG}line") if e.get("class") == "msg"]
    first = [a for a in arrows if "(round 1," in a.find(f"{SVG}title").text]
    # concurrent messages start together and end together: parallel, not a staircase
    assert len(first) == 4 and len({a.get("x1") for a in first}) == 1 and len({a.get("x2") for a in first}) == 1
    labels = [e.text for e in root.iter(f"{SVG}text")]
    assert "reduce-scatter" in labels and "allgather" in labels
    assert not [e for e in root.iter(f"{SVG}text") if e.get("class") == "warning"]


def test_a_trace_longer_than_the_model_is_warned_about_in_text_and_pictures():
    trace = analyse(_ring(4, 8))  # a ring allreduce with two steps too many
    warning = model_warning(trace, (6, 48))
    assert warning is not None and "8 messages" in warning and "6" in warning
    assert model_warning(trace, (8, 64)) is None and model_warning(trace, None) is None
    assert warning in format_trace(trace, "ring", prediction=(6, 48))
    root = ET.fromstring(trace_svg(trace, "ring", (6, 48)).split("\n", 1)[1])
    assert [e.text for e in root.iter(f"{SVG}text") if e.get("class") == "warning"] == [warning]
    pytest.importorskip("matplotlib")
    assert trace_png(trace, "ring", (6, 48)).startswith(b"\x89PNG")


@pytest.mark.timeout(180)
def test_trace_cli_prints_rounds_checks_result_and_writes_files(tmp_path, pimpi_cli):
    svg, js = tmp_path / "ring.svg", tmp_path / "ring.json"
    proc = pimpi_cli("run", "-n", "3", "--timeout", "120", "--", "collectives", "trace", "allreduce",
                  "--algorithm", "ring", "--size", "30", "--dtype", "int64", "--svg", str(svg),
                  "--json", str(js))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "round 1: 3 messages" in proc.stdout and "round 4" in proc.stdout
    assert "result: OK" in proc.stdout
    data = json.loads(js.read_text())
    assert data["totals"]["messages"] == 2 * 3 * 2 == len(data["messages"])
    assert (data["totals"]["critical_path_messages"], data["totals"]["critical_path_bytes"]) == (
        data["prediction"]["messages"], data["prediction"]["bytes"])
    arrows = [e for e in ET.parse(svg).getroot().iter(f"{SVG}line") if e.get("class") == "msg"]
    assert len(arrows) == 12


@pytest.mark.timeout(120)
def test_trace_cli_refuses_a_bad_algorithm_in_one_line(pimpi_cli):
    proc = pimpi_cli("run", "-n", "2", "--timeout", "60", "--", "collectives", "trace", "allreduce",
                  "--algorithm", "nosuch")
    assert proc.returncode != 0
    assert proc.stderr.count("unknown algorithm 'nosuch'") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_collectives_list_shows_each_algorithm_with_its_cost_without_mpi():
    from click.testing import CliRunner

    from pimpi.cli import cli
    from pimpi.collectives import ALGORITHMS, cost

    result = CliRunner().invoke(cli, ["collectives", "list", "-p", "8", "--bytes", "8192"])
    assert result.exit_code == 0, result.output
    msgs, volume = cost("allreduce", "ring", 8192, 8)
    line = next(l for l in result.output.splitlines() if l.split()[:2] == ["allreduce", "ring"])
    assert f"{msgs:g} messages" in line and format_bytes(volume) in line
    assert sum(len(a) for a in ALGORITHMS.values()) == result.output.count(" messages  ")


def test_messages_of_one_round_are_drawn_side_by_side_not_as_a_chain():
    # one ring step on 4 ranks: every rank sends right at once (round 1 for all four)
    logs = [[_send((r + 1) % 4), _recv((r - 1) % 4)] for r in range(4)]
    trace = analyse(logs)
    assert {m.round for m in trace.messages} == {1}
    root = ET.fromstring(trace_svg(trace, "ring step").split("\n", 1)[1])
    arrows = [e for e in root.iter(f"{SVG}line") if e.get("class") == "msg"]
    starts = {(a.get("x1"), a.get("y1")) for a in arrows}
    ends = {(a.get("x2"), a.get("y2")) for a in arrows}
    assert len({a.get("x1") for a in arrows}) == 1 and len({a.get("x2") for a in arrows}) == 1
    assert not starts & ends  # no arrow begins where another ends: not a chain


def test_a_critical_path_longer_than_the_model_is_flagged():
    logs = [[_send(1, 1024)], [_recv(0, 1024), _send(2, 1024)], [_recv(1, 1024)]]
    trace = analyse(logs)
    assert "warning: the critical path has 2 messages, more than the 1" in format_trace(trace, "t", (1, 1024))
    assert "warning" not in format_trace(trace, "t", (2, 2048))
