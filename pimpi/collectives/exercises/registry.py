"""The graded exercises: what each asks for, its message pattern, hints and test matrix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .cases import ROOTED, Case

__all__ = ["Function", "Exercise", "EXERCISES", "get_exercise", "cases_for", "plan", "reference_path"]

ALL_DTYPES = ("int32", "int64", "float64", "complex128")
_OP_HINT = ("Combine with `op.Reduce_local(incoming, acc)` (acc = incoming op acc, in place), "
            "or `np.add(acc, incoming, out=acc)` for SUM.")
_NONBLOCKING_HINT = ("Exchanging with a partner? Use `comm.Sendrecv(sendbuf, dest, recvbuf=..., "
                     "source=...)` or Irecv + Isend + `MPI.Request.Waitall([...])`: two blocking "
                     "Sends that face each other can deadlock on large messages.")


@dataclass(frozen=True)
class Function:
    """One function the learner writes."""

    name: str
    kind: str  # the case kind that tests it (see cases.KINDS)
    params: str  # the parameter list after `def name(`
    task: str


@dataclass(frozen=True)
class Exercise:
    """One exercise: its functions, the pattern to build, hints and which cases grade it."""

    name: str
    title: str
    functions: tuple[Function, ...]
    pattern: str
    hints: tuple[str, ...]
    dtypes: tuple[str, ...] = ALL_DTYPES
    lengths: tuple[int, ...] = (0, 1, 7)
    large: int = 100_000
    trace: str = ""  # arguments of `pimpi collectives trace` that show a reference at work

    @property
    def rooted(self) -> bool:
        return any(f.kind in ROOTED for f in self.functions)


def _ex(*args, **kwargs) -> Exercise:
    return Exercise(*args, **kwargs)


EXERCISES: dict[str, Exercise] = {ex.name: ex for ex in (
    _ex("ring_pass", "Pass a token around the ring",
        (Function("ring_pass", "ring_pass", "comm, buf, root=0",
                  "`buf` on `root` holds the token. Send it to rank root+1, which adds its own\n"
                  "rank number to every element and passes it on to the next rank (wrapping\n"
                  "round at size), until it comes back to `root`, which keeps it as it arrives.\n"
                  "Every other rank ends with the token it passed on (its rank added) in `buf`."),),
        "root -> root+1 -> ... -> root-1 -> root (mod p): p messages, one after another (p rounds).",
        ("Your neighbours are (rank + 1) % size and (rank - 1) % size.",
         "Only root sends first; everyone else starts with a Recv.",
         "With one rank there is nobody to talk to: return at once (a blocking Send to yourself can hang).")),
    _ex("bcast_linear", "Broadcast, one message at a time",
        (Function("bcast_linear", "bcast", "comm, buf, root=0",
                  "Copy `buf` from `root` to every rank: root sends the whole buffer to each\n"
                  "other rank in turn; the others receive it into `buf`."),),
        "root -> every other rank: p-1 messages, all leaving root (cost (p-1)(α + nβ)).",
        ("Loop over all ranks except root.", "Non-root ranks do exactly one Recv from root.",
         "Do not assume root is 0: the checker uses roots 0, the last rank and one in the middle."),
        trace="bcast --algorithm linear --size 1024"),
    _ex("bcast_binomial", "Broadcast along a binomial tree",
        (Function("bcast_binomial", "bcast", "comm, buf, root=0",
                  "Copy `buf` from `root` to every rank in ceil(log2 p) rounds: in each round every\n"
                  "rank that already has the data sends it to one that does not yet."),),
        "Round k: ranks with relative rank < 2^k send to relative rank + 2^k (relative rank =\n"
        "(rank - root) % size), so the number of ranks holding the data doubles each round.",
        ("Work with vrank = (rank - root) % size and map back with (vrank + root) % size.",
         "A rank first receives from vrank - (highest set bit of vrank), then sends to vrank + mask for "
         "each mask above that bit while vrank + mask < size.",
         "mpi4py's demo/reductions builds trees with `mask <<= 1` and `rank ^ mask`."),
        trace="bcast --algorithm binomial --size 1024"),
    _ex("scatterv_gatherv", "Scatter and gather uneven pieces (some empty)",
        (Function("scatterv", "scatterv", "comm, sendbuf, counts, recvbuf, root=0",
                  "On `root`, `sendbuf` holds sum(counts) items: rank r's piece is counts[r] items\n"
                  "starting at displacement sum(counts[:r]). Deliver each piece into that rank's\n"
                  "`recvbuf` (counts[rank] items). Counts may be 0."),
         Function("gatherv", "gatherv", "comm, sendbuf, recvbuf, counts, root=0",
                  "The reverse: rank r's `sendbuf` (counts[r] items) lands in root's `recvbuf`\n"
                  "at displacement sum(counts[:r]).")),
        "root <-> every other rank, one message each, of a different size per rank.",
        ("Displacements are the exclusive prefix sum of counts: displs[0] = 0.",
         "Root copies its own piece locally; it sends nothing to itself.",
         "A slice `recvbuf[a:b]` of a contiguous 1-D array is a valid buffer for Recv.",
         "Decide what to do with a zero count (skipping the message is fine, if both sides agree)."),
        trace="scatterv --size 100"),
    _ex("dot_product", "Parallel dot product with reduce",
        (Function("dot_product", "dot_product", "comm, x, y, root=0",
                  "Each rank holds a piece of two long vectors (pieces differ in length, some are\n"
                  "empty). Return the dot product of the whole vectors on `root` (any value\n"
                  "elsewhere): a local dot product, then one reduction to root."),),
        "Local work, then a reduction tree towards root (log2 p rounds).",
        ("np.dot of two empty arrays is 0.",
         "`from pimpi.collectives import reduce` gives you a point-to-point reduce: "
         "reduce(comm, np.array([local]), out, root=root).",
         "Return a plain number (out[0]) on root."),
        dtypes=("int64", "float64"),
        trace="reduce --algorithm binomial --size 1"),
    _ex("pi", "π by numerical integration",
        (Function("pi", "pi", "comm, n, root=0",
                  "Estimate π = ∫0..1 4/(1+x²) dx with the midpoint rule on `n` intervals of width\n"
                  "h = 1/n (midpoints (i + 0.5)·h). Split the intervals over the ranks, sum locally,\n"
                  "and reduce the partial sums to `root`, which returns the estimate."),),
        "Local work, then a reduction to root.",
        ("Cyclic split: rank r takes i = r, r + size, r + 2·size, ... (np.arange(rank, n, size)).",
         "`from pimpi.collectives import reduce`: reduce(comm, np.array([part]), out, root=root).",
         "Multiply by h once, after summing."),
        dtypes=("float64",), lengths=(1, 7, 1000),
        trace="reduce --algorithm binomial --size 1"),
    _ex("reduce_tree", "Reduce along a binomial tree",
        (Function("reduce_tree", "reduce", "comm, sendbuf, recvbuf, op=MPI.SUM, root=0",
                  "Combine every rank's `sendbuf` element-wise with `op` and leave the result in\n"
                  "`recvbuf` on `root` in ceil(log2 p) rounds. Do not modify `sendbuf`."),),
        "The broadcast tree run backwards: in round k, relative ranks with bit k set send their\n"
        "partial result to relative rank - 2^k and drop out.",
        ("Start with acc = sendbuf.copy(); receive into a scratch buffer, then combine.",
         _OP_HINT, "Use relative ranks vrank = (rank - root) % size, as in a binomial broadcast."),
        trace="reduce --algorithm binomial --size 1024"),
    _ex("allreduce_recursive_doubling", "Allreduce by recursive doubling",
        (Function("allreduce_recursive_doubling", "allreduce", "comm, sendbuf, recvbuf, op=MPI.SUM",
                  "Every rank ends with the element-wise `op` of all ranks' `sendbuf` in `recvbuf`.\n"
                  "In round k, rank exchanges its partial result with rank ^ 2^k and combines."),),
        "log2 p rounds of pairwise exchanges (r <-> r ^ 1, then r ^ 2, r ^ 4, ...). When p is not a\n"
        "power of two, fold the extra ranks in first and send them the result at the end.",
        ("Fold: with p2 the largest power of two <= p and rem = p - p2, the first 2*rem ranks pair "
         "up (even sends to odd) so p2 ranks remain; renumber them.", _OP_HINT, _NONBLOCKING_HINT),
        trace="allreduce --algorithm recursive_doubling --size 1024"),
    _ex("allreduce_ring", "Allreduce around a ring (reduce-scatter + allgather)",
        (Function("allreduce_ring", "allreduce", "comm, sendbuf, recvbuf, op=MPI.SUM",
                  "Every rank ends with the element-wise `op` of all `sendbuf`s in `recvbuf`. Split the\n"
                  "vector into p chunks; p-1 steps of reduce-scatter around the ring, then p-1 steps\n"
                  "of allgather."),),
        "2(p-1) steps; in each step every rank sends one chunk (n/p items) to rank+1 and receives\n"
        "one from rank-1: 2p(p-1) messages in all, only 2n(p-1)/p items on the critical path.",
        ("Chunks can be uneven or empty when n is not a multiple of p (n may be smaller than p).",
         "In reduce-scatter step s, send chunk (rank - s) % p and combine the received one into "
         "chunk (rank - s - 1) % p.", _OP_HINT, _NONBLOCKING_HINT),
        trace="allreduce --algorithm ring --size 1024"),
    _ex("allgather_ring", "Allgather around a ring",
        (Function("allgather_ring", "allgather", "comm, sendbuf, recvbuf",
                  "Every rank contributes `sendbuf` (n items); every rank ends with all p blocks in\n"
                  "rank order in `recvbuf` (p·n items)."),),
        "p-1 steps; in step s every rank forwards the block it received last step to rank+1.",
        ("Copy your own block into recvbuf first.",
         "In step s send block (rank - s) % p and receive block (rank - s - 1) % p.", _NONBLOCKING_HINT),
        trace="allgather --algorithm ring --size 128"),
    _ex("alltoall_pairwise", "All-to-all by pairwise exchange",
        (Function("alltoall_pairwise", "alltoall", "comm, sendbuf, recvbuf",
                  "`sendbuf` holds p blocks of n items; block j goes to rank j, where it lands as block\n"
                  "`rank` of its `recvbuf`."),),
        "p-1 steps; in step s, send to rank+s and receive from rank-s (mod p).",
        ("Block j of sendbuf is sendbuf[j*n:(j+1)*n]; n = sendbuf.size // size.",
         "Your own block is a local copy.", _NONBLOCKING_HINT),
        trace="alltoall --algorithm pairwise --size 128"),
    _ex("scan", "Inclusive prefix reduction (scan)",
        (Function("scan", "scan", "comm, sendbuf, recvbuf, op=MPI.SUM",
                  "Rank r ends with sendbuf_0 op sendbuf_1 op ... op sendbuf_r in `recvbuf`."),),
        "Either a linear chain (r -> r+1, p-1 rounds) or recursive doubling: in round k, rank r\n"
        "sends its running total to r + 2^k and adds what it gets from r - 2^k (log2 p rounds).",
        ("Keep two buffers: the prefix that is your answer, and the running total you pass on.",
         _OP_HINT),
        trace="scan --algorithm recursive_doubling --size 1024"),
)}


def get_exercise(name: str) -> Exercise:
    """The exercise called `name`, or ValueError listing them all."""
    try:
        return EXERCISES[name]
    except KeyError:
        raise ValueError(f"unknown exercise {name!r}; choose from {', '.join(EXERCISES)}") from None


def cases_for(exercise: Exercise, ranks: int) -> list[Case]:
    """Every case `check` runs at `ranks`: roots 0, last and middle; small, uneven and large lengths."""
    roots = sorted({0, ranks - 1, ranks // 2}) if exercise.rooted else [0]
    out: list[Case] = []
    for func in exercise.functions:
        func_roots = roots if func.kind in ROOTED else [0]
        for root in func_roots:
            for length in exercise.lengths:
                for dtype in exercise.dtypes:
                    out.append(Case(func.kind, ranks, root, length, dtype))
        big_dtype = "float64" if "float64" in exercise.dtypes else exercise.dtypes[-1]
        for root in sorted({0, ranks - 1}) if func.kind in ROOTED else [0]:
            out.append(Case(func.kind, ranks, root, exercise.large, big_dtype))
    return out


def plan(exercises: list[Exercise], ranks: int) -> list[tuple[int, Case]]:
    """The cases of several exercises run one after another in one job: (exercise index, case)."""
    return [(index, case) for index, ex in enumerate(exercises) for case in cases_for(ex, ranks)]


def reference_path(name: str) -> Path:
    """The reference solution shipped for exercise `name`."""
    get_exercise(name)
    return Path(__file__).with_name("solutions") / f"{name}.py"
