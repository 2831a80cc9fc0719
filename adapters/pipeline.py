"""The load pipeline every source shares: batches, rejects, checkpoints, progress, summary.

A source turns its input into a stream of :class:`Item` — a fact or a :class:`Reject`, each with
a *position* (line number, record index, stream sequence) that increases through the input. The
pipeline records facts in batches of ``batch_size``; each batch is one transaction that also
stores the source's checkpoint (the position of the batch's last item, as an eventsourcing
tracking record). So:

- a crash leaves whole batches, and the checkpoint names exactly what they covered;
- re-running the same load skips what the checkpoint covers and continues after it;
- anything recorded twice anyway (an overlapping export, a redelivered message) is a duplicate.

Facts are stamped with one ledger time per batch (the batch is committed, and so known, at
once), except facts restored from an export, which keep their own ``recorded_at``.

Rejected items never stop a load: each is written with its location, field and reason to the
rejects file, and counted.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ledger.application import Encoded, Ledger
from ledger.codec import dumps
from ledger.errors import InvalidFact
from ledger.events import Fact, stamped, uuid_of

BATCH_SIZE = 2000


@dataclass
class Reject:
    """One input record that could not become a fact."""

    where: str  # file:line, or another location a user can find
    field: str | None
    reason: str
    text: str

    def message(self) -> str:
        """The one-line report: where, which field, why."""
        field = f"{self.field}: " if self.field else ""
        return f"{self.where}: {field}{self.reason}"


@dataclass
class Item:
    """One input record, as a fact or a reject, at its position in the input."""

    position: int
    fact: Fact | None = None
    reject: Reject | None = None
    text: Callable[[], str] | None = None  # the raw record, for a correction rejected later
    restored: bool = False  # the record carried its own recorded_at (a restored export)


@dataclass
class LoadSummary:
    """The outcome of loading one input."""

    input: str
    read: int = 0
    recorded: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0  # already loaded, according to the checkpoint
    first_rejects: list[str] = field(default_factory=list)

    COUNTS = ("read", "recorded", "duplicates", "rejected", "skipped")

    def row(self) -> list[Any]:
        """The summary as a report row: input, then the counts."""
        return [self.input, *(getattr(self, name) for name in self.COUNTS)]


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
            "where": reject.where,
            "field": reject.field,
            "reason": reject.reason,
            "input": reject.text,
        }
        self._handle.write(dumps(entry) + b"\n")
        self.count += 1

    def close(self, *, resumed: bool = False) -> None:
        """Publish the rejects file; when nothing was rejected, remove a stale one.

        A resumed load (one that skipped what an earlier run loaded) appends to the earlier
        run's rejects instead of replacing them.
        """
        if self._handle is not None and self._tmp is not None:
            self._handle.close()
            if resumed and self.path.exists():
                with self.path.open("ab") as earlier, Path(self._tmp).open("rb") as new:
                    earlier.write(new.read())
                Path(self._tmp).unlink()
            else:
                Path(self._tmp).replace(self.path)
        elif not resumed and self.path.exists():
            self.path.unlink()


@dataclass
class ParsedBatch:
    """A batch read, parsed and encoded ahead of recording (by :mod:`adapters.parse_process`).

    It stands for the items :meth:`Loader.load` would gather into one batch: up to
    ``batch_size`` facts and the rejects read among them. Facts are already stamped with the
    batch's ledger time and encoded, as ``(id as an int, version, topic, state)``; a correction,
    which recording checks against its target, comes as ``(position, fact, raw record)``.
    """

    read: int = 0
    skipped: int = 0
    last: int = 0  # the position of the last item read (0 if none was)
    consumed: int = 0  # bytes of the input read so far
    corrections: int = 0  # how many of ``entries`` are corrections
    rejects: list[Reject] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)


Progress = Callable[[LoadSummary], None]


class Loader:
    """Feeds items from any source into the ledger, batch by batch."""

    def __init__(
        self,
        ledger: Ledger,
        rejects: RejectsFile,
        *,
        batch_size: int = BATCH_SIZE,
        progress: Progress | None = None,
    ) -> None:
        """Load into ``ledger``; rejected records go to ``rejects``."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.ledger = ledger
        self.rejects = rejects
        self.batch_size = batch_size
        self.progress = progress

    def load(self, items: Iterable[Item], summary: LoadSummary, key: str | None) -> LoadSummary:
        """Load ``items``; with a checkpoint ``key``, skip what is loaded and checkpoint batches.

        A batch's checkpoint is the position of the last item read before it was flushed, so
        rejected items are covered too and are not read (and rejected) again on a re-run.
        """
        done = self.ledger.checkpoint(key) if key else 0
        batch: list[Item] = []
        last = done
        for item in items:
            if item.position <= done:
                summary.skipped += 1
                continue
            summary.read += 1
            last = item.position
            if item.reject is not None:
                self._reject(item.reject, summary)
                continue
            batch.append(item)
            if len(batch) >= self.batch_size:
                self.flush(batch, summary, (key, last) if key else None)
                batch = []
        if batch or (key and last > done):
            self.flush(batch, summary, (key, last) if key else None)
        return summary

    def load_parsed(
        self, batches: Iterable[ParsedBatch], summary: LoadSummary, key: str | None, done: int
    ) -> LoadSummary:
        """Load batches parsed ahead, as :meth:`load` loads items (``done``: the checkpoint).

        Each batch is recorded with its checkpoint in one transaction, as :meth:`load` would
        record the same items, so a load may be resumed by either method.
        """
        for batch in batches:
            summary.read += batch.read
            summary.skipped += batch.skipped
            for reject in batch.rejects:
                self._reject(reject, summary)
            if not batch.read:
                continue
            entries: list[Fact | Encoded]
            if not batch.corrections:
                entries = [Encoded(uuid_of(i), *rest) for i, *rest in batch.entries]
            else:
                entries = self._checked_entries(batch, summary)
            self._commit(entries, summary, (key, max(batch.last, done)) if key else None)
        return summary

    def _checked_entries(self, batch: ParsedBatch, summary: LoadSummary) -> list[Fact | Encoded]:
        """A parsed batch's facts, less the corrections that do not hold (rejected)."""
        entries: list[Fact | Encoded] = []
        earlier: dict[Any, Fact | Encoded] = {}
        for entry in batch.entries:
            if len(entry) == 3:  # a correction: (position, fact, raw record)
                position, fact, text = entry
                if not self._checked(fact, earlier, summary, position, text):
                    continue
                checked: Fact | Encoded = fact
            else:
                checked = Encoded(uuid_of(entry[0]), *entry[1:])
            entries.append(checked)
            earlier[checked.originator_id] = checked
        return entries

    def flush(
        self, batch: list[Item], summary: LoadSummary, checkpoint: tuple[str, int] | None
    ) -> None:
        """Record one batch (and the checkpoint) in one transaction."""
        accepted: list[Fact] = []
        earlier: dict[Any, Fact] = {}
        stamp = datetime.now(UTC)  # a batch is committed at once, so it is known at once
        for item in batch:
            assert item.fact is not None
            if not self._checked(item.fact, earlier, summary, item.position, item.text):
                continue
            fact = item.fact if item.restored else stamped(item.fact, stamp)
            accepted.append(fact)
            earlier[fact.id] = fact
        self._commit(accepted, summary, checkpoint)

    def _checked(
        self,
        fact: Fact,
        earlier: dict[Any, Fact] | dict[Any, Fact | Encoded],
        summary: LoadSummary,
        position: int,
        text: Callable[[], str] | str | None,
    ) -> bool:
        """Whether ``fact`` may be recorded: a correction must hold (else it is rejected).

        ``text``: the raw record (or what gives it), written with a rejection.
        """
        try:
            self.ledger.check_correction(fact, earlier)
        except InvalidFact as error:
            raw = (text if isinstance(text, str) else text()) if text else ""
            self._reject(
                Reject(f"{summary.input}:{position}", error.field, error.reason, raw), summary
            )
            return False
        return True

    def _commit(
        self,
        entries: list[Fact] | list[Fact | Encoded],
        summary: LoadSummary,
        checkpoint: tuple[str, int] | None,
    ) -> None:
        """Record the checked facts of one batch, and the checkpoint, in one transaction."""
        result = self.ledger.record(entries, checkpoint=checkpoint)
        summary.recorded += len(result.recorded)
        summary.duplicates += len(result.duplicates)
        if self.progress:
            self.progress(summary)

    def _reject(self, reject: Reject, summary: LoadSummary) -> None:
        summary.rejected += 1
        self.rejects.add(reject)
        if len(summary.first_rejects) < 5:
            summary.first_rejects.append(reject.message())
