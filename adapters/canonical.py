"""The ledger's own JSONL format (docs/events.md): ``ingest`` reads it, ``export`` writes it.

Ingest streams each file line by line (constant memory, any size; ``.gz`` and ``-`` for stdin
accepted), turns lines into facts, and records them in batches: each batch is one transaction,
so a crash leaves whole batches and re-running the same command records only what is missing
(everything already recorded is counted as a duplicate). A line that is not a valid fact is
rejected with its file, line number, field and reason, written to a rejects file, and the rest of
the file still lands.
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from ledger.application import Ledger
from ledger.codec import dumps, fact_to_record, parse_fact
from ledger.errors import InvalidFact, RevledgerError
from ledger.events import Fact

BATCH_SIZE = 2000


class InputUnreadable(RevledgerError):
    """An input file does not exist or cannot be read."""


@dataclass
class Reject:
    """One input record that could not become a fact."""

    file: str
    line: int
    field: str | None
    reason: str
    text: str

    def message(self) -> str:
        """The one-line report: where, which field, why."""
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


@dataclass
class FileSummary:
    """The outcome of ingesting one file."""

    file: str
    read: int = 0
    recorded: int = 0
    duplicates: int = 0
    rejected: int = 0


@dataclass
class IngestSummary:
    """The outcome of one ingest run, per file and in total."""

    files: list[FileSummary] = field(default_factory=list)
    rejects_path: Path | None = None
    first_rejects: list[str] = field(default_factory=list)

    def total(self, name: str) -> int:
        """Sum one counter over the files."""
        return sum(getattr(f, name) for f in self.files)


Progress = Callable[[int], None]


@contextmanager
def open_input(path: str) -> Iterator[tuple[IO[bytes], Callable[[], int]]]:
    """Open a JSONL input (plain, gzip or stdin); yields the lines and a bytes-consumed probe."""
    if path == "-":
        yield sys.stdin.buffer, lambda: 0
        return
    try:
        raw = Path(path).open("rb")  # noqa: SIM115 - closed below
    except OSError as error:
        raise InputUnreadable(f"cannot read {path}: {error.strerror}") from None
    with raw:
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw) as unzipped:
                yield unzipped, raw.tell
        else:
            yield raw, raw.tell


Line = tuple[int, Fact, bytes]  # line number, fact, the line as read


def _text(line: bytes) -> str:
    return line.decode("utf-8", "replace").rstrip("\r\n")


def _parse_lines(path: str, lines: IO[bytes]) -> Iterator[Line | Reject]:
    """Yield a fact (with its line) or a reject for each non-blank line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record: Any = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            yield Reject(path, number, None, f"not valid JSON ({error})", _text(line))
            continue
        try:
            yield number, parse_fact(record), line
        except InvalidFact as error:
            yield Reject(path, number, error.field, error.reason, _text(line))


class RejectsFile:
    """Rejected records, written to a temporary file and moved into place when complete."""

    def __init__(self, path: Path) -> None:
        """Reject lines go to ``path`` (created only if something is rejected)."""
        self.path = path
        self.count = 0
        self._handle: IO[bytes] | None = None
        self._tmp: str | None = None

    def add(self, reject: Reject) -> None:
        """Write one rejected record with its location and reason."""
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(prefix=".rejects-", dir=self.path.parent)
            self._handle = os.fdopen(fd, "wb")
        entry = {
            "file": reject.file,
            "line": reject.line,
            "field": reject.field,
            "reason": reject.reason,
            "input": reject.text,
        }
        self._handle.write(dumps(entry) + b"\n")
        self.count += 1

    def close(self) -> None:
        """Publish the rejects file, or remove a stale one when nothing was rejected."""
        if self._handle is not None and self._tmp is not None:
            self._handle.close()
            Path(self._tmp).replace(self.path)
        elif self.path.exists():
            self.path.unlink()


def _record_batch(ledger: Ledger, batch: list[Line], summary: FileSummary,
                  rejects: RejectsFile, first: list[str], path: str) -> None:
    """Check corrections one by one (so one bad one rejects only itself), then record atomically."""
    accepted: list[Fact] = []
    earlier: dict[Any, Fact] = {}
    for number, fact, line in batch:
        try:
            ledger.check_correction(fact, earlier)
        except InvalidFact as error:
            reject = Reject(path, number, error.field, error.reason, _text(line))
            _note_reject(reject, summary, rejects, first)
            continue
        accepted.append(fact)
        earlier[fact.id] = fact
    result = ledger.record(accepted)
    summary.recorded += len(result.recorded)
    summary.duplicates += len(result.duplicates)


def _note_reject(reject: Reject, summary: FileSummary, rejects: RejectsFile, first: list[str]) -> None:
    summary.rejected += 1
    rejects.add(reject)
    if len(first) < 5:
        first.append(reject.message())


def ingest_files(
    ledger: Ledger,
    paths: list[str],
    *,
    rejects_path: Path,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[str, int, int], None] | None = None,
) -> IngestSummary:
    """Ingest canonical JSONL files in batches; ``progress(file, bytes_done, facts_done)``."""
    for path in paths:
        if path != "-" and not Path(path).is_file():
            raise InputUnreadable(f"cannot read {path}: no such file; check the path")
    summary = IngestSummary(rejects_path=rejects_path)
    rejects = RejectsFile(rejects_path)
    try:
        for path in paths:
            file_summary = FileSummary(path)
            summary.files.append(file_summary)
            with open_input(path) as (lines, consumed):
                batch: list[Line] = []
                for item in _parse_lines(path, lines):
                    file_summary.read += 1
                    if isinstance(item, Reject):
                        _note_reject(item, file_summary, rejects, summary.first_rejects)
                    else:
                        batch.append(item)
                    if len(batch) >= batch_size:
                        _record_batch(ledger, batch, file_summary, rejects, summary.first_rejects, path)
                        batch = []
                        if progress:
                            progress(path, consumed(), file_summary.read)
                if batch:
                    _record_batch(ledger, batch, file_summary, rejects, summary.first_rejects, path)
                if progress:
                    progress(path, consumed(), file_summary.read)
    finally:
        rejects.close()
    if not rejects.count:
        summary.rejects_path = None
    return summary


def export_facts(
    ledger: Ledger, out: str | None, progress: Callable[[int], None] | None = None
) -> int:
    """Write every fact, in recording order, as canonical JSONL to ``out`` (a path, or stdout).

    A file is written under a temporary name and moved into place when complete, so an
    interrupted export never leaves a truncated file behind.
    """
    count = 0
    if out in (None, "-"):
        stream = sys.stdout.buffer
        for position, fact in ledger.facts():
            stream.write(dumps(fact_to_record(fact)) + b"\n")
            count += 1
            if progress and count % BATCH_SIZE == 0:
                progress(position)
        stream.flush()
        return count
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".export-", dir=target.parent)
    try:
        raw = os.fdopen(fd, "wb")
        handle: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="wb") if out.endswith(".gz") else raw
        with raw, handle:
            for position, fact in ledger.facts():
                handle.write(dumps(fact_to_record(fact)) + b"\n")
                count += 1
                if progress and count % BATCH_SIZE == 0:
                    progress(position)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
