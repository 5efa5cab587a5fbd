"""A task wrapper that notes, on an exception, which call raised it and on which worker."""

from __future__ import annotations

from typing import Any, Callable

from pimpi.futures.attempt import worker_id

__all__ = ["Noted", "call_text"]


def call_text(name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> str:
    """'f(3, y=2)', arguments shortened to 200 characters."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in (kwargs or {}).items()]
    text = ", ".join(parts)
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{name}({text})"


class Noted:
    """`Noted(fn)(*args)` is `fn(*args)`; an exception it raises keeps its type and gains a
    note (shown under its traceback) naming the call and the worker."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.fn(*args, **kwargs)
        except Exception as exc:
            call = call_text(getattr(self.fn, "__name__", repr(self.fn)), args, kwargs)
            note = f"pimpi.futures: raised by {call} on {worker_id()}"
            if hasattr(exc, "add_note"):
                exc.add_note(note)
            else:  # Python < 3.11: kept, not printed
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]
            raise
