"""Rebuild the round-by-round picture of a run from every rank's message log."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .record import Event

__all__ = ["Message", "Trace", "gather_trace", "analyse"]


@dataclass
class Message:
    """One matched message with its causal round and its place on the one-port critical path."""

    src: int
    dst: int
    tag: int
    nbytes: int
    round: int
    t_send: float
    t_recv: float | None = None
    path_messages: int = 0
    path_bytes: int = 0
    depth: int = 0  # causal depth: 1 + the deepest message its sender had received
    phase: str = ""  # the algorithm's phase its sender was in (see record.phase)


@dataclass
class Trace:
    """A whole run: messages in send order, and its totals."""

    ranks: int
    messages: list[Message] = field(default_factory=list)
    path: tuple[int, int] = (0, 0)  # (messages, bytes) on the one-port critical path

    @property
    def depth(self) -> int:
        """Longest chain of messages each caused by the one before (ignores one-port order)."""
        return max((m.depth for m in self.messages), default=0)

    @property
    def rounds(self) -> int:
        return max((m.round for m in self.messages), default=0)

    @property
    def total_bytes(self) -> int:
        return sum(m.nbytes for m in self.messages)

    @property
    def critical_path(self) -> tuple[int, int]:
        """(messages, bytes) on the longest one-port chain: the α–β cost the run paid."""
        return tuple(self.path)  # type: ignore[return-value]

    def by_round(self) -> dict[int, list[Message]]:
        out: dict[int, list[Message]] = {}
        for msg in sorted(self.messages, key=lambda m: (m.round, m.src, m.dst)):
            out.setdefault(msg.round, []).append(msg)
        return out

    def phases(self) -> list[tuple[str, int, int]]:
        """(name, first round, last round) of each named phase (see record.phase), ordered
        by first round. Phases may share a round: a fold's message travels beside the
        first reduce-scatter messages."""
        spans: dict[str, list[int]] = {}
        for msg in self.messages:
            if msg.phase:
                span = spans.setdefault(msg.phase, [msg.round, msg.round])
                span[0], span[1] = min(span[0], msg.round), max(span[1], msg.round)
        return sorted(((name, a, b) for name, (a, b) in spans.items()), key=lambda s: (s[1], s[2]))

    def to_dict(self) -> dict[str, Any]:
        path_msgs, path_bytes = self.critical_path
        return {
            "ranks": self.ranks, "messages": [asdict(m) for m in self.messages],
            "phases": [{"name": n, "first_round": a, "last_round": b} for n, a, b in self.phases()],
            "totals": {"messages": len(self.messages), "bytes": self.total_bytes, "rounds": self.rounds, "depth": self.depth,
                       "critical_path_messages": path_msgs, "critical_path_bytes": path_bytes},
        }



def gather_trace(comm: Any, events: list[Event], root: int = 0) -> Trace | None:
    """Gather every rank's log to `root` (pickled: it is the harness, not the algorithm)."""
    logs = comm.gather([(e.kind, e.peer, e.tag, e.nbytes, e.time, e.label) for e in events], root=root)
    if comm.Get_rank() != root:
        return None
    return analyse([[Event(*row) for row in log] for log in logs])


def _match(logs: list[list[Event]]) -> dict[tuple[int, int], tuple[int, int]]:
    """Map each receive (rank, index) to its send (rank, index).

    MPI never lets two messages on one (source, destination, tag) channel overtake
    each other, so the k-th receive on a channel matches the k-th send on it.
    """
    sends: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    for rank, log in enumerate(logs):
        for index, ev in enumerate(log):
            if ev.kind == "S":
                sends.setdefault((rank, ev.peer, ev.tag), []).append((rank, index))
    used: dict[tuple[int, int, int], int] = {}
    matched: dict[tuple[int, int], tuple[int, int]] = {}
    wildcards: list[tuple[int, int]] = []
    for rank, log in enumerate(logs):
        for index, ev in enumerate(log):
            if ev.kind != "R":
                continue
            key = (ev.peer, rank, ev.tag)
            if ev.peer < 0 or ev.tag < 0 or key not in sends:
                wildcards.append((rank, index))
                continue
            k = used.get(key, 0)
            if k < len(sends[key]):
                matched[(rank, index)] = sends[key][k]
                used[key] = k + 1
    taken = set(matched.values())
    for rank, index in wildcards:  # an Irecv(ANY_SOURCE) completed by Waitall: best effort
        ev = logs[rank][index]
        for (src, dst, tag), items in sends.items():
            if dst != rank or (ev.peer >= 0 and src != ev.peer) or (ev.tag >= 0 and tag != ev.tag):
                continue
            free = [item for item in items if item not in taken]
            if free:
                matched[(rank, index)] = free[0]
                taken.add(free[0])
                break
    return matched


def analyse(logs: list[list[Event]]) -> Trace:
    """Messages with rounds and one-port critical-path positions, from all ranks' logs.

    Round of a send = 1 + the highest round this rank has received so far or sent
    before (a Lamport clock that ticks on sends): a rank puts one message out per
    round, so a binomial broadcast takes ceil(log2 p) rounds and a linear one p-1,
    as in the classic step-by-step pictures. The critical path also serialises
    each rank's receives (one message in, one out at a time): what α–β costs count.
    """
    matched = _match(logs)
    by_send: dict[tuple[int, int], Message] = {}
    for rank, log in enumerate(logs):
        label = ""
        for index, ev in enumerate(log):
            if ev.kind == "P":
                label = ev.label
            elif ev.kind == "S":
                by_send[(rank, index)] = Message(rank, ev.peer, ev.tag, ev.nbytes, 0, ev.time,
                                                 phase=label)
    ranks = len(logs)
    pos = [0] * ranks
    seen_round = [0] * ranks  # highest round received or sent so far
    seen_depth = [0] * ranks  # deepest message received so far
    # one-port clocks, each a [messages, bytes] pair kept componentwise
    dep = [[0, 0] for _ in range(ranks)]  # critical path of the data this rank holds
    out_port = [[0, 0] for _ in range(ranks)]
    in_port = [[0, 0] for _ in range(ranks)]
    progress = True
    while progress:
        progress = False
        for rank, log in enumerate(logs):
            while pos[rank] < len(log):
                ev = log[pos[rank]]
                if ev.kind == "P":
                    pos[rank] += 1
                    continue
                if ev.kind == "S":
                    msg = by_send[(rank, pos[rank])]
                    msg.round = seen_round[rank] + 1
                    msg.depth = seen_depth[rank] + 1
                    seen_round[rank] = msg.round
                    msg.path_messages = max(out_port[rank][0], dep[rank][0]) + 1
                    msg.path_bytes = max(out_port[rank][1], dep[rank][1]) + msg.nbytes
                    out_port[rank] = [msg.path_messages, msg.path_bytes]
                    pos[rank] += 1
                    progress = True
                    continue
                # a run of receives completes together: take them in causal order
                end = pos[rank]
                while end < len(log) and log[end].kind == "R":
                    end += 1
                batch = [matched.get((rank, i)) for i in range(pos[rank], end)]
                if any(key is not None and by_send[key].round == 0 for key in batch):
                    break  # a sender has not reached that send yet
                for index, key in zip(range(pos[rank], end), batch):
                    if key is not None:
                        by_send[key].t_recv = log[index].time
                msgs = sorted((by_send[key] for key in batch if key is not None),
                              key=lambda m: (m.path_messages, m.path_bytes))
                for msg in msgs:
                    seen_round[rank] = max(seen_round[rank], msg.round)
                    seen_depth[rank] = max(seen_depth[rank], msg.depth)
                    port = in_port[rank]
                    port[0] = max(port[0] + 1, msg.path_messages)
                    port[1] = max(port[1] + msg.nbytes, msg.path_bytes)
                    dep[rank] = [max(dep[rank][0], port[0]), max(dep[rank][1], port[1])]
                pos[rank] = end
                progress = True
        if not progress and any(pos[r] < len(logs[r]) for r in range(ranks)):
            # only possible with a receive we could not match: skip it and go on
            stuck = next(r for r in range(ranks) if pos[r] < len(logs[r]))
            pos[stuck] += 1
            progress = True
    messages = sorted(by_send.values(), key=lambda m: (m.t_send, m.src))
    path = tuple(max((max(out_port[r][k], dep[r][k]) for r in range(ranks)), default=0) for k in (0, 1))
    return Trace(ranks=ranks, messages=messages, path=path)

