"""What a learner can do about a common MPI error or crash: one hint per error class or signal."""

from __future__ import annotations

__all__ = ["for_error", "for_crash", "named_peers", "halo_difference", "pair_difference",
           "OP_FIRST"]

OP_FIRST = ("op FIRST is a non-commutative op that keeps its left operand: the result is rank 0's data "
            "only if every combination keeps rank order (lower ranks on the left)")

_MPI = {
    "MPI_ERR_RANK": "a rank outside 0..size-1 was given as dest or source; at the edge of a line use "
                    "MPI.PROC_NULL (a send to it does nothing)",
    "MPI_ERR_TRUNCATE": "a message was longer than the receive buffer: make the buffer as long as what is "
                        "sent (Probe and Get_count when you cannot know it), and check the tags match",
    "MPI_ERR_COUNT": "a negative or too large count: check the count given with the buffer",
    "MPI_ERR_TYPE": "a datatype that is not committed or was freed: call newtype.Commit() before using it",
    "MPI_ERR_TAG": "a tag below 0 (only receives may use MPI.ANY_TAG)",
    "MPI_ERR_ROOT": "a root outside 0..size-1",
    "MPI_ERR_BUFFER": "a buffer mpi4py cannot use: give a NumPy array (or [array, MPI type])",
    "MPI_ERR_COMM": "a communicator that is MPI.COMM_NULL (a rank outside a Split's colour?) or freed",
    "MPI_ERR_REQUEST": "a request that was already completed or freed",
    "MPI_ERR_WIN": "a window that was freed or never created on every rank",
    "MPI_ERR_RMA_SYNC": "a Put/Get outside an access epoch: call win.Fence() before and after them",
    "MPI_ERR_ARG": "an argument MPI refused: check the order (buf, dest, tag) and the counts",
}

_SIGNALS = {
    "Segmentation fault": "memory was read or written outside an array: a buffer freed or too short for "
                          "what MPI wrote into it (a receive count larger than the array, a datatype "
                          "larger than the buffer)",
    "Bus error": "a buffer too short for its datatype, or a file mapped and then truncated",
    "Aborted": "the process aborted (an MPI error that ends the job, or a failed C assertion)",
    "Floating point exception": "an integer divided by zero",
}


def for_error(exc: BaseException) -> str:
    """'; hint: ...' for an mpi4py MPI.Exception (or an error naming an MPI error class), else ''."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.errno == 30:  # EROFS: the sandbox
        return ("; hint: the grader lets a rank write only in its own folder (the current directory), and "
                "ranks share data only by messages")
    for name, hint in _MPI.items():
        if name in text:
            return f"; hint: {hint}"
    return ""


def for_crash(text: str) -> str:
    """The hint for a crash whose faulthandler text is `text`, or ''."""
    for name, hint in _SIGNALS.items():
        if name in text:
            return f"; hint: {hint}"
    return ""



def named_peers(text: str) -> str:
    """'Recv(source=-2, ...)' -> 'Recv(source=MPI.PROC_NULL, ...)' (and MPI.ANY_SOURCE for -1)."""
    import re

    text = re.sub(r"(dest|source)=-2\b", r"\1=MPI.PROC_NULL", text)
    return re.sub(r"source=-1\b", "source=MPI.ANY_SOURCE", text)


def _region(i: int, j: int, rows: int, cols: int) -> str:
    top, bottom, left, right = i == 0, i == rows - 1, j == 0, j == cols - 1
    if (top or bottom) and (left or right):
        return f"the {'top' if top else 'bottom'}-{'left' if left else 'right'} corner"
    if top or bottom:
        return f"the {'top' if top else 'bottom'} ghost row (from the neighbour {'above' if top else 'below'})"
    if left or right:
        return f"the {'left' if left else 'right'} ghost column (from the neighbour on the {'left' if left else 'right'})"
    return "the interior (it must stay as it was)"


def halo_difference(got: object, expected: object) -> str | None:
    """Where a 2-D block with ghost cells differs: '[0, 3] in the top ghost row (...): got 7, expected 19'."""
    import numpy as np

    try:
        arr, exp = np.asarray(got), np.asarray(expected)
        if exp.ndim != 2 or arr.shape != exp.shape:
            return None
        wrong = np.argwhere(arr != exp)
    except (TypeError, ValueError):
        return None
    if not len(wrong):
        return None
    i, j = (int(v) for v in wrong[0])
    regions = {_region(int(a), int(b), *exp.shape).split(" (")[0] for a, b in wrong}
    more = f"; {len(wrong)} cells differ, in {', '.join(sorted(regions))}" if len(wrong) > 1 else ""
    return (f"block[{i}, {j}] in {_region(i, j, *exp.shape)}: got {arr[i, j]}, expected {exp[i, j]}{more}")


def pair_difference(got: object, expected: object, labels: tuple[str, str]) -> str | None:
    """Which half of a returned pair (row_sum, col_sum) is wrong: 'row_sum got [5 1] expected [1 5]'."""
    import numpy as np

    from ..cases import abbreviate

    try:
        arr, exp = np.asarray(got).reshape(-1), np.asarray(expected).reshape(-1)
    except (TypeError, ValueError):
        return None
    if arr.shape != exp.shape or exp.size % 2:
        return None
    half = exp.size // 2
    parts = [f"{label} got {abbreviate(arr[k * half:(k + 1) * half])} expected {abbreviate(exp[k * half:(k + 1) * half])}"
             for k, label in enumerate(labels) if not np.array_equal(arr[k * half:(k + 1) * half],
                                                                      exp[k * half:(k + 1) * half])]
    return "; ".join(parts) or None
