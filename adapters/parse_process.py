"""Parse a large JSONL input in a second process while this one records it.

Per event, ingest parses and validates the line, builds the fact and encodes its stored state,
then checks it against the ledger and writes it. On a machine with two or more cores, a file of
at least :data:`MIN_BYTES` is read, parsed and encoded by a child process, a batch at a time, while
the loading process checks, records and commits the batches before it
(:meth:`adapters.pipeline.Loader.load_parsed`). What a load records, rejects, skips and
checkpoints is exactly what the single-process load does with the same input:

- the child makes the same batches (``batch_size`` facts and the rejects read among them) and
  skips what the checkpoint covers, which the parent reads before starting it;
- each batch's facts carry one ledger time, taken when the child starts the batch, which is at
  most :data:`QUEUE_BATCHES` batches before the parent commits it;
- facts cross as ``(id, version, topic, state)`` tuples of plain values (cheaper to pass between
  processes than fact objects); corrections, which recording checks against their targets, cross
  as facts with their raw record;
- the parent holds at most :data:`QUEUE_BATCHES` batches read ahead, and the child blocks when
  they are not taken, so memory stays constant; an error in the child (an unreadable or corrupt
  file) is raised in the parent, and the child is stopped whenever the parent stops early.

The child is a fresh interpreter (``python -c``) that writes pickled batches, each after its
length, to its standard output. Unlike :mod:`multiprocessing`, this neither forks the parent
(which holds database connections and may run threads) nor imports the parent's main script
again, so any program may call ingest without a ``__main__`` guard.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from adapters.pipeline import ParsedBatch
from ledger.codec import FactMapper
from ledger.errors import RevledgerError
from ledger.events import CORRECTIONS
from ledger.processes import cores, last_line, start_child

MIN_BYTES = 16 << 20  # files this long or longer are parsed in a second process
QUEUE_BATCHES = 4  # batches the parent holds read ahead of the one it records
_LENGTH = struct.Struct("<Q")  # each message's length, before it
_END = object()  # what the reading thread queues when the child's output ends


class ParseProcessFailed(RevledgerError):
    """The process parsing an input stopped without finishing it."""


def wanted(path: str, *, asked: bool | None) -> bool:
    """Whether to parse ``path`` in a second process: as ``asked``, or (None) if :func:`usable`.

    Standard input is always parsed in the loading process.
    """
    if path == "-":
        return False
    return usable(path) if asked is None else asked


def usable(path: str) -> bool:
    """Whether ``path`` is worth parsing in a second process on this machine."""
    if path == "-":
        return False
    return cores() > 1 and Path(path).stat().st_size >= MIN_BYTES


class ParseProcess:
    """A child process parsing one input into :class:`ParsedBatch` es; iterate to receive them.

    Use as a context manager: leaving it (normally, on an error, or on an interrupt) stops the
    child if it still runs.
    """

    def __init__(self, path: str, *, done: int, batch_size: int) -> None:
        """Parse ``path`` after position ``done``, in batches of ``batch_size`` facts."""
        self.path = path
        self._args = [path, str(done), str(batch_size)]
        self._frames: queue.Queue[bytes | object] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._stop = threading.Event()
        self._errors: IO[bytes] | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Self:
        """Start the child, and the thread that reads its output."""
        self._errors = tempfile.TemporaryFile()
        self._child = start_child(
            "import adapters.parse_process as p; p.child()",
            *self._args,
            errors=self._errors,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read, name="revledger-parse", daemon=True)
        self._reader.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Stop the child if it still runs, and the reading thread."""
        self._stop.set()
        if self._child is not None:
            if self._child.poll() is None:
                self._child.kill()
            self._child.wait()
            if self._child.stdout is not None:
                self._child.stdout.close()
        if self._reader is not None:
            self._reader.join()
        if self._errors is not None:
            self._errors.close()

    def __iter__(self) -> Iterator[ParsedBatch]:
        """The batches in input order; raises what the child raised, or if it died."""
        while True:
            frame = self._frames.get()
            if frame is _END:
                raise ParseProcessFailed(self._failure())
            message = pickle.loads(frame)  # type: ignore[arg-type]  # noqa: S301 - our child's
            if message is None:
                return
            if isinstance(message, BaseException):
                raise message
            yield message

    def _read(self) -> None:
        """The reading thread: queue each message the child writes, then :data:`_END`."""
        assert self._child is not None
        assert self._child.stdout is not None
        stream = self._child.stdout
        try:
            while (head := stream.read(_LENGTH.size)) and len(head) == _LENGTH.size:
                frame = stream.read(_LENGTH.unpack(head)[0])
                if not self._put(frame):
                    return
        except (OSError, ValueError):  # the stream was closed under it: the parent is leaving
            return
        self._put(_END)

    def _put(self, item: bytes | object) -> bool:
        """Queue ``item``, waiting for room; False if the parent stopped meanwhile."""
        while not self._stop.is_set():
            try:
                self._frames.put(item, timeout=0.5)
            except queue.Full:
                continue
            return True
        return False

    def _failure(self) -> str:
        """Why the child's output ended before its last message."""
        assert self._child is not None
        assert self._errors is not None
        code = self._child.wait()
        return (
            f"the process parsing {self.path} stopped (exit code {code}){last_line(self._errors)}; "
            "run the same command again (it resumes after the last recorded batch)"
        )


def child() -> None:
    """The child's main: parse the input named in ``sys.argv`` and write its batches.

    Writes each batch, then None; or, on an error, the error (to be raised by the parent). The
    child ignores SIGINT: an interrupt is the parent's to handle, and the parent stops it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    path, done, batch_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    out = sys.stdout.fileno()

    def send(message: object) -> None:
        frame = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        write_all(out, _LENGTH.pack(len(frame)) + frame)

    try:
        for batch in parse_batches(path, done=done, batch_size=batch_size):
            send(batch)
        send(None)
    except BrokenPipeError:  # the parent stopped reading: it is leaving
        return
    except Exception as error:  # noqa: BLE001 - every failure is the parent's to report
        send(error if _picklable(error) else RuntimeError(f"{type(error).__name__}: {error}"))


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``: one ``os.write`` after another, as ``multiprocessing`` does.

    Not through ``sys.stdout.buffer``: with a profiler or debugger attached by ``ptrace``
    (py-spy), the buffered stream's large writes to a full pipe were seen to corrupt the
    stream (bytes of one message in the middle of another), which the parent could only
    report as an unreadable batch; single writes, each resumed where the last one stopped,
    were not.
    """
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def parse_batches(path: str, *, done: int, batch_size: int) -> Iterator[ParsedBatch]:
    """The batches :meth:`~adapters.pipeline.Loader.load` would make of ``path``, parsed ahead.

    Facts are stamped with the time their batch was started, and encoded; the last batch holds
    what follows the last full one (and may be empty).
    """
    from adapters.canonical import open_input, read_items  # noqa: PLC0415 - it imports this

    encode = FactMapper().to_stored_event
    stamp = [datetime.now(UTC)]  # the current batch's ledger time
    batch = ParsedBatch()
    facts = 0
    with open_input(path) as (lines, consumed):
        for item in read_items(path, lines, stamp=lambda: stamp[0]):
            if item.position <= done:
                batch.skipped += 1
                continue
            batch.read += 1
            batch.last = item.position
            fact = item.fact
            if fact is None:
                assert item.reject is not None
                batch.rejects.append(item.reject)
                continue
            if isinstance(fact, CORRECTIONS):
                assert item.text is not None
                batch.entries.append((item.position, fact, item.text()))
                batch.corrections += 1
            else:
                stored = encode(fact)
                batch.entries.append(
                    (fact.originator_id.int, stored.originator_version, stored.topic, stored.state)
                )
            facts += 1
            if facts >= batch_size:
                batch.consumed = consumed()
                yield batch
                batch, facts, stamp[0] = ParsedBatch(), 0, datetime.now(UTC)
        batch.consumed = consumed()
        yield batch


def _picklable(error: BaseException) -> bool:
    """Whether ``error`` survives the trip to the parent."""
    import pickle  # noqa: PLC0415 - only on the error path

    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, just made
    except Exception:  # noqa: BLE001 - any failure means it does not
        return False
    return True
