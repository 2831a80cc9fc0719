"""What every file source shares: reading CSV/JSONL rows, times, stage maps, items, the load.

A file source (``mapping``, ``salesforce``, ``hubspot``) turns each input row into canonical
records (docs/events.md) with a *convert* function, which raises :class:`InvalidFact` naming the
column and reason when a row cannot be used. :func:`row_items` turns those into pipeline items:
row ``n`` gives positions ``n * SLOTS + k`` for its ``k``-th fact, so a checkpoint can fall
between two facts of one row and a resumed load still records the rest. :func:`load_inputs`
then runs every input through the shared :class:`~adapters.pipeline.Loader`, one checkpoint key
per input (its fingerprint plus the digest of the configuration that shapes its facts).
"""

from __future__ import annotations

import csv
import hashlib
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from adapters.canonical import fingerprint
from adapters.pipeline import BATCH_SIZE, Item, Loader, LoadSummary, Progress, Reject, RejectsFile
from ledger.application import Ledger
from ledger.codec import parse_fact
from ledger.errors import ConfigurationError, InvalidFact

SLOTS = 1000  # facts one input row may give; positions are row * SLOTS + k
Row = Mapping[str, Any]
Record = dict[str, Any]
Convert = Callable[[Any], list[Record | InvalidFact]]  # a record, or why one is refused
CSV_FIELD_LIMIT = 1 << 24  # long text cells (descriptions) are legal in CRM exports


class SourceFileError(ConfigurationError):
    """An input, mapping or stage-map file is unusable; raised before anything is written."""


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file, or raise :class:`SourceFileError` naming the file and the problem."""
    try:
        with Path(path).open("rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise SourceFileError(f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise SourceFileError(f"{path}: not valid TOML: {error}") from None


def zone(name: Any, where: str) -> ZoneInfo:
    """The timezone called ``name`` (an IANA name such as Europe/Berlin)."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"{where}: unknown timezone {name!r}; use an IANA name such as Europe/Berlin or UTC"
        raise SourceFileError(msg) from None


def parse_time(value: str, column: str, *, fmt: str = "iso", tz: ZoneInfo | None = None) -> str:
    """Parse a timestamp cell (ISO 8601 or a strptime format) to RFC 3339 UTC.

    A value without an offset is read in ``tz`` (UTC if none); a date alone is midnight there.
    """
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text) if fmt == "iso" else datetime.strptime(text, fmt)  # noqa: DTZ007
    except ValueError:
        expected = "an ISO 8601 timestamp" if fmt == "iso" else f"a time in the format {fmt}"
        raise InvalidFact(f"{value!r} is not {expected}", column) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz or UTC)
    return utc_text(parsed)


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: one fixed width, so the texts sort as the times do."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stable_hash(values: Iterable[str]) -> str:
    """A short, stable digest of ``values`` (length-prefixed, so the split is unambiguous)."""
    joined = "".join(f"{len(v)}:{v}" for v in values)
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


def digest(*parts: Any) -> str:
    """A digest of configuration values (part of a checkpoint key: new config, new key)."""
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass
class StageMap:
    """Source stage names to ledger stages, with the policy for names nobody mapped."""

    names: dict[str, str]
    where: str  # the file and table to name in a reject ("salesforce.toml [lead_stages]")
    on_unmapped: str = "reject"

    def __call__(self, value: str, column: str) -> str | None:
        """The ledger stage of ``value``; None to skip the row; raise to reject it."""
        stage = self.names.get(value.strip())
        if stage is not None:
            return stage
        if self.on_unmapped == "skip":
            return None
        msg = (
            f"stage {value.strip()!r} is not mapped; add it to {self.where} "
            'or set on_unmapped = "skip"'
        )
        raise InvalidFact(msg, column)


def stage_table(value: Any, where: str) -> dict[str, str]:
    """Check a TOML table of source stage name -> ledger stage name."""
    if not isinstance(value, dict) or not all(
        isinstance(v, str) and v.strip() for v in value.values()
    ):
        raise SourceFileError(f'{where}: expected a table of "source stage" = "ledger stage"')
    return {str(k).strip(): v.strip() for k, v in value.items()}


def unmapped_policy(value: Any, where: str) -> str:
    """Check an ``on_unmapped`` value."""
    if value not in ("reject", "skip"):
        raise SourceFileError(f'{where}: on_unmapped must be "reject" or "skip", not {value!r}')
    return str(value)


@dataclass(frozen=True)
class ConfigFile:
    """A source's ``--config`` TOML, checked: its stage tables, unmapped policy and currency."""

    raw: dict[str, Any]
    tables: dict[str, dict[str, str]]
    policy: str
    currency: str
    where: str


def read_config(
    path: str | Path | None, tables: Sequence[str], settings: Sequence[str]
) -> ConfigFile:
    """Read and check a source's config file (empty when ``path`` is None).

    Only the keys in ``tables`` (string-to-string maps) and ``settings`` (strings) are allowed.
    """
    raw: dict[str, Any] = read_toml(path) if path else {}
    where = str(path)
    for key, value in raw.items():
        if key not in (*tables, *settings):
            raise SourceFileError(
                f"{where}: {key}: unknown key; expected one of {', '.join((*settings, *tables))}"
            )
        if key in settings and not isinstance(value, str):
            raise SourceFileError(f"{where}: {key}: expected a string, got {value!r}")
    maps = {t: stage_table(raw.get(t, {}), f"{where}: {t}") for t in tables}
    policy = unmapped_policy(raw.get("on_unmapped", "reject"), f"{where}: on_unmapped")
    currency = raw.get("currency", "USD")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise SourceFileError(
            f"{where}: currency: {currency!r} is not an ISO 4217 code such as USD"
        )
    return ConfigFile(raw, maps, policy, currency, where)


@dataclass
class CsvInput:
    """A CSV file with a header row, read row by row."""

    path: Path
    delimiter: str = ","
    header: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Read the header now, so a missing column is refused before anything is written."""
        csv.field_size_limit(CSV_FIELD_LIMIT)
        try:
            with self.path.open(newline="", encoding="utf-8-sig") as handle:
                self.header = next(csv.reader(handle, delimiter=self.delimiter), [])
        except OSError as error:
            raise SourceFileError(f"cannot read {self.path}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise SourceFileError(f"{self.path}: not UTF-8 text; export as UTF-8") from None
        if not self.header:
            raise SourceFileError(f"{self.path}: empty file; expected a header row")

    def require(self, columns: Iterable[str], what: str) -> None:
        """Refuse the file unless its header holds every column of ``columns``."""
        missing = [c for c in columns if c not in self.header]
        if missing:
            msg = (
                f"{self.path}: no column {missing[0]!r} (needed by {what}); "
                f"the header has {', '.join(self.header)}"
            )
            raise SourceFileError(msg)

    def rows(self) -> Iterator[tuple[int, int, dict[str, str]]]:
        """(row number, line number, row) for each record; blank cells are ''."""
        with self.path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, delimiter=self.delimiter, restval="")
            line = 2
            for number, row in enumerate(reader, start=1):
                yield number, line, {k: (v or "") for k, v in row.items() if k is not None}
                line = reader.line_num + 1


def jsonl_rows(path: Path) -> Iterator[tuple[int, int, Any]]:
    """(record number, line number, object) for each non-blank line of a JSONL file."""
    with path.open("rb") as handle:
        number = 0
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            number += 1
            try:
                yield number, line, orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                yield number, line, InvalidFact(f"not valid JSON ({error})")


def row_text(row: Any) -> str:
    """The input row as one line of text, for the rejects file."""
    return orjson.dumps(row, default=str).decode()


def row_items(name: str, rows: Iterable[tuple[int, int, Any]], convert: Convert) -> Iterator[Item]:
    """Turn numbered rows into pipeline items through ``convert`` (rejects name file:line)."""
    for number, line, row in rows:
        where = f"{name}:{line}"
        try:
            if isinstance(row, InvalidFact):
                raise row
            records = convert(row)
        except InvalidFact as error:
            yield Item(
                number * SLOTS, reject=Reject(where, error.field, error.reason, row_text(row))
            )
            continue
        yield from record_items(where, number * SLOTS, records, row)


def record_items(
    where: str, base: int, records: list[Record | InvalidFact], row: Any
) -> Iterator[Item]:
    """Items for the records one row gave: facts, or rejects when a record is not a fact."""
    if len(records) > SLOTS:
        reason = f"gives {len(records)} facts, more than the {SLOTS} one record may give"
        yield Item(base, reject=Reject(where, None, reason, row_text(row)))
        return
    for k, record in enumerate(records):
        try:
            if isinstance(record, InvalidFact):
                raise record
            fact = parse_fact(record)
        except InvalidFact as error:
            reject = Reject(where, error.field, error.reason, row_text(row))
            yield Item(base + k, reject=reject)
            continue
        yield Item(base + k, fact=fact, text=partial(row_text, record))


@dataclass
class Input:
    """One input of a load: its name in reports, checkpoint key and items."""

    name: str
    key: str | None
    items: Iterable[Item]


def checkpoint_key(kind: str, path: Path, config: str) -> str:
    """The checkpoint key of one file read under one configuration."""
    return f"{kind}:{config}:{fingerprint(str(path))}"


def load_inputs(
    ledger: Ledger,
    inputs: Iterable[Input],
    *,
    rejects_path: Path,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> list[LoadSummary]:
    """Load each input through the shared pipeline; returns a summary per input."""
    rejects = RejectsFile(rejects_path)
    summaries: list[LoadSummary] = []
    try:
        for source in inputs:
            summary = LoadSummary(source.name)
            summaries.append(summary)
            loader = Loader(ledger, rejects, batch_size=batch_size, progress=progress)
            loader.load(source.items, summary, source.key)
            if progress:
                progress(summary)
    finally:
        rejects.close(resumed=any(s.skipped for s in summaries))
    return summaries
