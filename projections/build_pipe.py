"""Overlap the rebuild's reading, deriving and writing: a reader thread and a writer thread.

Deriving is Python and holds the interpreter lock; reading the ledger and writing the shadow
tables spend much of their time in the database driver (SQLite's engine, PostgreSQL's server),
which does not. So a rebuild reads the next pages on one thread (:func:`read_ahead`), derives on
the calling thread, and writes on another (:class:`Writer`), each hand-over bounded to a couple
of batches so memory stays flat. The writer runs its work in submission order on one connection,
so a query submitted after some rows sees them.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import sqlalchemy as sa

T = TypeVar("T")
DEPTH = 2  # batches (or pages) in flight between two threads


class Positioned(Protocol):
    """Anything with a ledger position (a :class:`projections.store.Stored`)."""

    @property
    def position(self) -> int:
        """The notification id."""
        ...


P = TypeVar("P", bound=Positioned)
_DONE = object()


def read_ahead(
    read: Callable[[int], Sequence[P]], end: int, depth: int = DEPTH
) -> Iterator[Sequence[P]]:
    """The pages ``read(after)`` returns from position 0 up to ``end``, read on another thread."""
    pages: queue.Queue[Any] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: object) -> None:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.1)
            except queue.Full:
                continue
            return

    def run() -> None:
        try:
            position = 0
            while position < end and not stop.is_set():
                page = read(position)
                if not page:
                    break
                put(page)
                position = page[-1].position
            put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            put(error)

    thread = threading.Thread(target=run, name="rebuild-reader", daemon=True)
    thread.start()
    try:
        while (item := pages.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


class Writer:
    """Database work run in order on one connection by one thread, at most ``depth`` behind."""

    def __init__(self, conn: sa.Connection, depth: int = DEPTH) -> None:
        """Work on ``conn``, which the caller must not use until :meth:`drain` returns."""
        self.conn = conn
        self.depth = depth
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="rebuild-writer")
        self._pending: deque[Future[Any]] = deque()

    def submit(self, work: Callable[[sa.Connection], T]) -> Future[T]:
        """Queue ``work``; wait first if ``depth`` earlier items are still queued."""
        while len(self._pending) >= self.depth:
            self._pending.popleft().result()
        future = self._pool.submit(work, self.conn)
        self._pending.append(future)
        return future

    def drain(self) -> None:
        """Wait for all queued work (raising the first error)."""
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> Self:
        """Start."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Finish the queued work (or, after an error, only the item running) and stop."""
        if kind is None:
            self.drain()
        self._pool.shutdown(wait=True, cancel_futures=True)
