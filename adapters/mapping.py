"""The generic file source: any CSV or JSONL funnel export, described by a TOML mapping file.

The mapping names the columns that hold the subject id, the time, the event type or the stage,
the actor and the source id, plus tables for stage names, ledger fields, constants and
attributes (the keys are documented in docs/adapters.md). It is checked in full, and against the
input's header, before anything is written: :class:`~adapters.files.SourceFileError` names the
mapping file and key. Rows then stream one at a time; the only state kept is the last stage of
each subject when the stage's *from* value is not a column (one string per subject).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.files import (
    CsvInput,
    Input,
    Record,
    Row,
    SourceFileError,
    StageMap,
    checkpoint_key,
    digest,
    jsonl_rows,
    parse_time,
    read_toml,
    row_items,
    stable_hash,
    stage_table,
    unmapped_policy,
    zone,
)
from ledger.errors import InvalidFact
from ledger.events import FACT_TYPES, Fact, domain_fields, required_fields

STAGE_TYPES = frozenset({"stage_changed", "opportunity_stage_changed"})
TEXT_KEYS = (
    "source",
    "id_column",
    "id_prefix",
    "time_column",
    "time_format",
    "timezone",
    "actor",
    "actor_column",
    "source_id_column",
    "event_type",
    "event_type_column",
    "stage_column",
    "from_stage_column",
    "on_unmapped",
    "delimiter",
    "format",
)
TABLE_KEYS = ("event_types", "stage_map", "fields", "constants", "attributes")
DERIVED = frozenset({"to_stage", "from_stage", "attributes"})


@dataclass
class Mapping:
    """A checked mapping file."""

    path: Path
    settings: dict[str, Any]
    types: dict[str, type[Fact]]  # every event type the mapping can produce
    stages: StageMap | None
    columns: list[str] = field(default_factory=list)  # every input column it reads

    def get(self, key: str, default: Any = None) -> Any:
        """A top-level setting."""
        return self.settings.get(key, default)

    def fail(self, key: str, reason: str) -> SourceFileError:
        """The one-line error for a bad ``key``."""
        return SourceFileError(f"{self.path}: {key}: {reason}")


def _require_one(mapping: Mapping, *keys: str) -> None:
    if not any(mapping.get(k) for k in keys):
        raise mapping.fail(keys[0], f"missing; set {' or '.join(keys)}")


def _check_types(mapping: Mapping) -> None:
    names = [mapping.get("event_type")] if mapping.get("event_type") else []
    if mapping.get("event_type_column"):
        names += list(mapping.get("event_types", {}).values())
        if not mapping.get("event_types"):
            raise mapping.fail(
                "event_types",
                'required with event_type_column: a table of "source value" = "ledger event type"',
            )
    elif not names and mapping.get("stage_column"):
        names = ["stage_changed"]
    for name in names:
        if name not in FACT_TYPES:
            key = "event_type" if name == mapping.get("event_type") else "event_types"
            raise mapping.fail(key, f"unknown event type {name!r}; see docs/events.md")
    mapping.types = {name: FACT_TYPES[name] for name in names}
    if mapping.get("stage_column") and not STAGE_TYPES & set(mapping.types):
        raise mapping.fail(
            "stage_column", "only stage_changed and opportunity_stage_changed take a stage"
        )


def _check_fields(mapping: Mapping) -> None:
    known = set().union(*(domain_fields(cls) for cls in mapping.types.values()))
    subjects = {cls.subject_field for cls in mapping.types.values()}
    for table in ("fields", "constants"):
        for name in mapping.get(table, {}):
            if name not in known or name in subjects | DERIVED:
                raise mapping.fail(
                    f"{table}.{name}",
                    "not a field the mapped event types take "
                    "from a column (see docs/events.md and docs/adapters.md)",
                )
    if mapping.get("attributes") and "attributes" not in known:
        raise mapping.fail("attributes", "the mapped event types have no attributes")
    given = {*mapping.get("fields", {}), *mapping.get("constants", {}), *subjects}
    for name, cls in mapping.types.items():
        if name in STAGE_TYPES and not mapping.get("stage_column"):
            raise mapping.fail("stage_column", f"required to produce {name}")
        if "attributes" in required_fields(cls) and not mapping.get("attributes"):
            raise mapping.fail("attributes", f"required to produce {name}")
        missing = sorted(required_fields(cls) - given - DERIVED)
        if missing:
            raise mapping.fail(
                f"fields.{missing[0]}",
                f"required by {name}; map it to a "
                "column in the fields table or give a value in the constants table",
            )


def load_mapping(path: str | Path) -> Mapping:  # noqa: C901, PLR0912 - one check per key, read top down
    """Read and check a mapping file (not yet against an input header)."""
    path = Path(path)
    raw = read_toml(path)
    mapping = Mapping(path, raw, {}, None)
    for key, value in raw.items():
        if key in TEXT_KEYS:
            if not isinstance(value, str):
                raise mapping.fail(key, f"expected a string, got {value!r}")
        elif key in TABLE_KEYS:
            if not isinstance(value, dict):
                raise mapping.fail(key, "expected a table")
        elif key == "source_id_hash":
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, str) for v in value)
            ):
                raise mapping.fail(key, "expected a list of column names")
        else:
            raise mapping.fail(key, "unknown key; see docs/adapters.md for the keys")
    for key in ("source", "id_column", "time_column"):
        _require_one(mapping, key)
    _require_one(mapping, "actor", "actor_column")
    _require_one(mapping, "source_id_column", "source_id_hash")
    _require_one(mapping, "event_type", "event_type_column", "stage_column")
    zone(mapping.get("timezone", "UTC"), f"{path}: timezone")
    fmt = mapping.get("time_format", "iso")
    if fmt != "iso" and "%" not in fmt:
        raise mapping.fail("time_format", f'{fmt!r} is neither "iso" nor a strptime format')
    if mapping.get("format", "csv") not in ("csv", "jsonl"):
        raise mapping.fail("format", 'expected "csv" or "jsonl"')
    policy = unmapped_policy(mapping.get("on_unmapped", "reject"), f"{path}: on_unmapped")
    _check_types(mapping)
    _check_fields(mapping)
    if mapping.get("stage_column"):
        if not mapping.get("stage_map"):
            raise mapping.fail("stage_map", "required with stage_column")
        names = stage_table(mapping.get("stage_map"), f"{path}: stage_map")
        mapping.stages = StageMap(names, f"the stage_map table of {path}", policy)
    for table in ("fields", "attributes"):
        for name, column in mapping.get(table, {}).items():
            if not isinstance(column, str) or not column:
                raise mapping.fail(f"{table}.{name}", "expected a column name")
    mapping.columns = [
        mapping.get(k)
        for k in (
            "id_column",
            "time_column",
            "actor_column",
            "source_id_column",
            "event_type_column",
            "stage_column",
            "from_stage_column",
        )
        if mapping.get(k)
    ]
    mapping.columns += [
        *mapping.get("source_id_hash", []),
        *mapping.get("fields", {}).values(),
        *mapping.get("attributes", {}).values(),
    ]
    return mapping


class MappedRows:
    """Rows of one input turned into canonical records by a mapping."""

    def __init__(self, mapping: Mapping) -> None:
        """Prepare the converter (the per-subject last stage starts empty)."""
        self.mapping = mapping
        self.tz = zone(mapping.get("timezone", "UTC"), str(mapping.path))
        self.previous: dict[str, str] = {}

    def event_type(self, row: Row) -> str | None:
        """The row's event type (None: skip the row, by the on_unmapped policy)."""
        column = self.mapping.get("event_type_column")
        if not column:
            return next(iter(self.mapping.types))
        value = _cell(row, column)
        kind = self.mapping.get("event_types", {}).get(value)
        if kind is None and self.mapping.get("on_unmapped", "reject") == "reject":
            msg = (
                f"event type {value!r} is not mapped; add it to the event_types table of "
                f'{self.mapping.path} or set on_unmapped = "skip"'
            )
            raise InvalidFact(msg, column)
        return str(kind) if kind is not None else None

    def __call__(self, row: Row) -> list[Record | InvalidFact]:
        """The record of one row (none when the row is skipped)."""
        m = self.mapping
        if not isinstance(row, dict):
            raise InvalidFact("a record must be a JSON object")
        kind = self.event_type(row)
        if kind is None:
            return []
        subject = _cell(row, m.get("id_column"))
        if not subject:
            raise InvalidFact("blank id", m.get("id_column"))
        subject = f"{m.get('id_prefix', '')}{subject}"
        record: Record = {
            "type": kind,
            "source": m.get("source"),
            FACT_TYPES[kind].subject_field: subject,
        }
        when = _cell(row, m.get("time_column"))
        if not when:
            raise InvalidFact("blank time", m.get("time_column"))
        record["occurred_at"] = parse_time(
            when, m.get("time_column"), fmt=m.get("time_format", "iso"), tz=self.tz
        )
        record["actor"] = _cell(row, m.get("actor_column")) or m.get("actor")
        record["source_id"] = self.source_id(row)
        known = domain_fields(FACT_TYPES[kind])
        record.update({k: v for k, v in m.get("constants", {}).items() if k in known})
        for name, column in m.get("fields", {}).items():
            if name in known and _cell(row, column):
                record[name] = row[column]
        attributes = {
            name: row[column]
            for name, column in m.get("attributes", {}).items()
            if _cell(row, column)
        }
        if "attributes" in known and attributes:
            record["attributes"] = attributes
        if kind in STAGE_TYPES and not self.stage(row, subject, record):
            return []
        return [record]

    def source_id(self, row: Row) -> str:
        """The row's own id, or the stable hash of the chosen columns."""
        column = self.mapping.get("source_id_column")
        if column:
            value = _cell(row, column)
            if not value:
                raise InvalidFact("blank source id", column)
            return value
        return stable_hash(_cell(row, c) for c in self.mapping.get("source_id_hash"))

    def stage(self, row: Row, subject: str, record: Record) -> bool:
        """Fill to_stage and from_stage; False when the row is skipped as unmapped."""
        assert self.mapping.stages is not None
        column = self.mapping.get("stage_column")
        to_stage = self.mapping.stages(_cell(row, column), column)
        if to_stage is None:
            return False
        from_column = self.mapping.get("from_stage_column")
        if from_column:
            value = _cell(row, from_column)
            from_stage = self.mapping.stages(value, from_column) if value else None
        else:
            from_stage = self.previous.get(subject)
            self.previous[subject] = to_stage
        record["to_stage"] = to_stage
        if from_stage:
            record["from_stage"] = from_stage
        return True


def _cell(row: Row, column: str | None) -> str:
    value = row.get(column) if column else None
    return "" if value is None else str(value).strip()


def mapped_input(mapping: Mapping, path: Path, *, rescan: bool = False) -> Input:
    """One input file read through ``mapping``, its header checked now."""
    fmt = mapping.get("format") or ("jsonl" if path.suffix in (".jsonl", ".ndjson") else "csv")
    key = None if rescan else checkpoint_key("mapping", path, digest(mapping.settings))
    convert = MappedRows(mapping)
    if fmt == "csv":
        table = CsvInput(path, delimiter=mapping.get("delimiter", ","))
        table.require(mapping.columns, f"mapping {mapping.path}")
        return Input(str(path), key, row_items(str(path), table.rows(), convert))
    return Input(str(path), key, row_items(str(path), _jsonl(path), convert))


def _jsonl(path: Path) -> Iterator[tuple[int, int, Any]]:
    """JSONL objects have no header: a key missing from a record reads as a blank cell."""
    if not path.is_file():
        raise SourceFileError(f"cannot read {path}: no such file; check the path")
    return jsonl_rows(path)


def mapping_inputs(
    mapping_path: str | Path, paths: list[str], *, rescan: bool = False
) -> list[Input]:
    """Every input of a mapping load, all checked before the first is read."""
    mapping = load_mapping(mapping_path)
    return [mapped_input(mapping, Path(p), rescan=rescan) for p in paths]
