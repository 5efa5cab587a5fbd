"""The task farm's wire and its worker side: ranks > 0 ask rank 0 for tasks, run them, send results.

Control messages (a few hundred bytes) are pickled on tag `TAG_CTRL`; result arrays travel
as raw buffers on tag `TAG_DATA`, announced by a header with their shape and dtype.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

import numpy as np

from pimpi.mpi import poll_wait
from pimpi.tasks.report import Task, one_line

__all__ = ["TAG_CTRL", "TAG_DATA", "recv_ctrl", "as_result", "worker_loop"]

TAG_CTRL = 71
TAG_DATA = 72


def recv_ctrl(comm: Any, source: int, status: Any = None) -> Any:
    """Receive one pickled control message, waiting politely."""
    from mpi4py import MPI

    st = MPI.Status() if status is None else status
    poll_wait(lambda: comm.iprobe(source=source, tag=TAG_CTRL, status=st), what="control message")
    return comm.recv(source=st.Get_source(), tag=TAG_CTRL)


def as_result(value: Any) -> Optional[np.ndarray]:
    """What `work` returned, as a contiguous array to send (or None); TypeError otherwise."""
    if value is None:
        return None
    if not isinstance(value, np.ndarray):
        raise TypeError(f"work() must return a numpy array or None, got {type(value).__name__}")
    return np.ascontiguousarray(value)


def worker_loop(comm: Any, work: Callable[[Task], Any], t0: float) -> None:
    """Ranks > 0: ask rank 0 for chunks, run them, send results back.

    The next chunk is asked for when the last task of the current one starts, so the
    answer is waiting when it ends (the round trip hides behind work). Result buffers go
    out with Isend: the rank renders on while rank 0 picks them up.
    """
    from mpi4py import MPI

    sending: list[tuple[Any, np.ndarray]] = []  # (request, buffer) until delivered
    comm.send(("ready",), dest=0, tag=TAG_CTRL)
    stale = False  # the chunk on its way was asked for before a failure here
    while True:
        msg = recv_ctrl(comm, 0)
        if msg[0] == "stop":
            break
        payload = msg[1]
        if stale:  # rank 0 may have blocklisted us since: hand it back, ask afresh
            comm.send(("return", [i for i, _ in payload]), dest=0, tag=TAG_CTRL)
            comm.send(("ready",), dest=0, tag=TAG_CTRL)
            stale = False
            continue
        asked = False
        for position, (index, task) in enumerate(payload):
            if position == len(payload) - 1:
                comm.send(("ready",), dest=0, tag=TAG_CTRL)  # prefetch the next chunk
                asked = True
            start = time.monotonic()
            try:
                result = as_result(work(task))
                error = ""
            except Exception as exc:  # noqa: BLE001 - any failure of one task is reported
                result, error = None, one_line(exc)
            end = time.monotonic()
            times = (start - t0, end - t0)
            if error:
                comm.send(("fail", index, times, error), dest=0, tag=TAG_CTRL)
                rest = [i for i, _ in payload[position + 1:]]
                if rest:  # a failing rank may be blocklisted now: hand the rest back
                    comm.send(("return", rest), dest=0, tag=TAG_CTRL)
                stale = asked
                break
            if result is None:
                comm.send(("done", index, times, None), dest=0, tag=TAG_CTRL)
            else:
                comm.send(("done", index, times, (result.shape, result.dtype.str)), dest=0, tag=TAG_CTRL)
                sending.append((comm.Isend(result, dest=0, tag=TAG_DATA), result))
            sending = [(req, buf) for req, buf in sending if not req.Test()]
        if not asked:
            comm.send(("ready",), dest=0, tag=TAG_CTRL)
    if sending:
        requests = [req for req, _ in sending]
        poll_wait(lambda: MPI.Request.Testall(requests), what="result delivery")
