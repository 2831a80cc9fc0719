"""The ledger's own JSONL format (docs/events.md): ``ingest`` reads it, ``export`` writes it.

Ingest streams each file line by line (constant memory, any size; ``.gz`` and ``-`` for stdin
accepted), turns lines into facts, and hands them to the shared load pipeline
(:mod:`adapters.pipeline`): batches of one transaction each, with the file's checkpoint (the last
line number loaded) in the same transaction, so an interrupted ingest resumes after the last
committed batch. A line that is not a valid fact is rejected with its file, line number, field and
reason, written to a rejects file, and the rest of the file still lands.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, Any, cast

import orjson

from adapters import parse_process
from adapters.pipeline import (
    BATCH_SIZE,
    Item,
    Loader,
    LoadSummary,
    ParsedBatch,
    Reject,
    RejectsFile,
)
from ledger.application import Ledger
from ledger.codec import dumps, fact_to_record, parse_fact
from ledger.errors import InvalidFact, RevledgerError


class InputUnreadable(RevledgerError):
    """An input file does not exist or cannot be read."""


FileProgress = Callable[[LoadSummary, int, int | None], None]  # summary, bytes done, total


@contextmanager
def open_input(path: str) -> Iterator[tuple[IO[bytes], Callable[[], int]]]:
    """Open a JSONL input (plain, ``.gz``, or ``-`` for stdin) and a probe of bytes consumed."""
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
                yield cast("IO[bytes]", unzipped), raw.tell
        else:
            yield raw, raw.tell


def fingerprint(path: str) -> str | None:
    """A checkpoint key for a file: its size and the digest of its first MiB (None for stdin).

    A file that is replaced or appended to gets a new key (and is read again from its start,
    where idempotency makes the overlap harmless); re-running on the same file resumes.
    """
    if path == "-":
        return None
    with Path(path).open("rb") as handle:
        head = hashlib.sha256(handle.read(1 << 20)).hexdigest()[:32]
    return f"jsonl:{Path(path).stat().st_size}:{head}"


def _text(line: bytes) -> str:
    return line.decode("utf-8", "replace").rstrip("\r\n")


def _lines_of(name: str, lines: IO[bytes]) -> Iterator[bytes]:
    """The input's lines, numbered from 1.

    A read that fails (a truncated or corrupt ``.gz``, a device error) raises
    :class:`InputUnreadable`, naming the input and the last line read.
    """
    number = 0
    try:
        for number, line in enumerate(lines, start=1):  # noqa: B007 - counted for the message
            yield line
    except (EOFError, OSError, zlib.error) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        msg = (
            f"cannot read {name} after line {number:,}: {reason}; the batches read before it "
            "are recorded; repair or replace the file and run the same command again (it "
            "resumes after them)"
        )
        raise InputUnreadable(msg) from None


def read_items(
    path: str, lines: IO[bytes], *, stamp: Callable[[], datetime] | None = None
) -> Iterator[Item]:
    """One item per non-blank line: the fact, or the reason it is not one.

    ``stamp`` gives the ledger time of the facts as they are parsed (else they are stamped now,
    and the load pipeline stamps them again per batch); a record's own ``recorded_at`` is kept.
    """
    name = "stdin" if path == "-" else path
    for number, line in enumerate(_lines_of(name, lines), start=1):
        if not line or line.isspace():  # what `not line.strip()` says, without the copy
            continue
        try:
            record: Any = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            reject = Reject(f"{name}:{number}", None, f"not valid JSON ({error})", _text(line))
            yield Item(number, reject=reject)
            continue
        try:
            fact = parse_fact(record, recorded_at=stamp() if stamp else None)
            restored = isinstance(record, dict) and record.get("recorded_at") is not None
            yield Item(number, fact=fact, text=partial(_text, line), restored=restored)
        except InvalidFact as error:
            reject = Reject(f"{name}:{number}", error.field, error.reason, _text(line))
            yield Item(number, reject=reject)


def ingest_files(  # noqa: PLR0913 - the ledger, the files and keyword-only options
    ledger: Ledger,
    paths: list[str],
    *,
    rejects_path: Path,
    batch_size: int = BATCH_SIZE,
    rescan: bool = False,
    progress: FileProgress | None = None,
    parallel: bool | None = None,
) -> list[LoadSummary]:
    """Ingest canonical JSONL files, resuming each after its checkpoint unless ``rescan``.

    ``parallel``: parse each file in a second process (:mod:`adapters.parse_process`); by
    default, files of at least ``parse_process.MIN_BYTES`` on a machine with two or more cores.
    Standard input is always parsed in this process.
    """
    for path in paths:
        if path != "-" and not Path(path).is_file():
            raise InputUnreadable(f"cannot read {path}: no such file; check the path")
    rejects = RejectsFile(rejects_path)
    summaries: list[LoadSummary] = []
    try:
        for path in paths:
            summary = LoadSummary("stdin" if path == "-" else path)
            summaries.append(summary)
            key = None if rescan else fingerprint(path)
            total = Path(path).stat().st_size if path != "-" else None
            if parse_process.wanted(path, asked=parallel):
                _ingest_parsed(
                    ledger,
                    path,
                    rejects=rejects,
                    summary=summary,
                    key=key,
                    batch_size=batch_size,
                    progress=progress,
                    total=total,
                )
                continue
            with open_input(path) as (lines, consumed):
                tick = (lambda s, c=consumed, t=total: progress(s, c(), t)) if progress else None
                loader = Loader(ledger, rejects, batch_size=batch_size, progress=tick)
                loader.load(read_items(path, lines), summary, key)
                if progress:
                    progress(summary, consumed(), total)
    finally:
        rejects.close(resumed=any(s.skipped for s in summaries))
    return summaries


def _ingest_parsed(  # noqa: PLR0913 - what ingest_files holds for one file
    ledger: Ledger,
    path: str,
    *,
    rejects: RejectsFile,
    summary: LoadSummary,
    key: str | None,
    batch_size: int,
    progress: FileProgress | None,
    total: int | None,
) -> None:
    """Ingest one file (``total`` bytes) parsed by a second process (:mod:`parse_process`)."""
    done = ledger.checkpoint(key) if key else 0
    consumed = 0

    def tick(summary: LoadSummary) -> None:
        if progress:
            progress(summary, consumed, total)

    def batches(parsed: parse_process.ParseProcess) -> Iterator[ParsedBatch]:
        nonlocal consumed
        for batch in parsed:
            consumed = batch.consumed
            yield batch

    loader = Loader(ledger, rejects, batch_size=batch_size, progress=tick)
    with parse_process.ParseProcess(path, done=done, batch_size=batch_size) as parsed:
        loader.load_parsed(batches(parsed), summary, key, done)
    tick(summary)


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
        handle = cast(
            "IO[bytes]", gzip.GzipFile(fileobj=raw, mode="wb") if out.endswith(".gz") else raw
        )
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
