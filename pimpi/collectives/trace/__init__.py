"""Message traces of collectives, one module per job.

record  the TracingComm proxy: logs every point-to-point message, refuses pickled
        calls and built-in collectives (ForbiddenCall)
rounds  rebuilds rounds and the one-port critical path from all ranks' logs (analyse)
run     runs one collective on a TracingComm and checks it against MPI (trace_collective)
draw    the terminal diagram, SVG and PNG of a trace
save    writes a report or a trace as SVG, PNG or JSON, atomically
"""

from __future__ import annotations

from .draw import format_bytes, format_trace, model_warning, trace_png, trace_svg
from .record import BUILTIN, PICKLED, Event, ForbiddenCall, TracingComm, phase
from .rounds import Message, Trace, analyse, gather_trace
from .run import TraceReport, check_request, trace_call, trace_collective
from .save import save_report, save_trace

__all__ = [
    "PICKLED", "BUILTIN", "ForbiddenCall", "TracingComm", "Event", "Message", "Trace", "analyse",
    "gather_trace", "format_bytes", "format_trace", "trace_svg", "trace_png", "save_report", "save_trace",
    "TraceReport", "check_request", "trace_collective", "trace_call", "phase", "model_warning",
]
