"""Keep Python's cyclic garbage collector out of bulk work: rebuilds and every report.

They hold many objects (a rebuild's window of facts, a report's deals, leads and touches) while
they allocate hundreds of thousands of short-lived tuples; the collector would keep re-scanning
the held objects (a third of a rebuild's time, and of a credit report's at 3M events). What they
allocate is freed by reference counting: a rebuild forms no reference cycles (a collection
between batches found none), and a report about a hundred, from the database layer, collected
once the collector resumes.

Every report runs paused (``Reports.run``): in a process that has run a few, a full collection
rescans what the database layer keeps (compiled statements, metadata) and cost velocity about 30
ms at 10M events in two runs of three; paused, its runs take the same time each.

The pause is counted: with several pauses overlapping (threads, or a report during a rebuild in
one process) the collector resumes when the last one ends, and only if it was on before the
first began.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar


@dataclass
class _Pause:
    """How many pauses are running, and whether to resume the collector after the last."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    running: int = 0
    resume: bool = False


_PAUSE = _Pause()


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused for the duration of the block (counted)."""
    with _PAUSE.lock:
        if _PAUSE.running == 0:
            _PAUSE.resume = gc.isenabled()
            gc.disable()
        _PAUSE.running += 1
    try:
        yield
    finally:
        with _PAUSE.lock:
            _PAUSE.running -= 1
            if _PAUSE.running == 0 and _PAUSE.resume:
                gc.enable()


P = ParamSpec("P")
R = TypeVar("R")


def without_gc(work: Callable[P, R]) -> Callable[P, R]:
    """Run ``work`` with the cyclic garbage collector paused (:func:`paused_gc`)."""

    @functools.wraps(work)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        with paused_gc():
            return work(*args, **kwargs)

    return paused
