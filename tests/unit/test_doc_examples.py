"""docs/events.md cannot rot: its examples parse, and its sections and field tables match the code.

Every non-blank line of every ```json block in the document is an example record and must be
accepted by :func:`ledger.codec.parse_fact`. Every type in :data:`ledger.events.FACT_TYPES` has a
``### `type_name` `` section whose table lists exactly the type's fields, with their kind and
whether they are required, and whose example is of that type.
"""

from __future__ import annotations

import re
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.codec import parse_fact
from ledger.events import ENVELOPE, FACT_TYPES, domain_fields, required_fields

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
LINES = DOC.read_text(encoding="utf-8").splitlines()
SECTION = re.compile(r"^### `(\w+)`$")
HEADING = re.compile(r"^#{1,3} ")

KIND_NAMES: dict[Any, str] = {
    str: "string",
    int: "integer",
    Decimal: "amount",
    date: "date",
    datetime: "timestamp",
    tuple[str, ...]: "list of strings",
    dict[str, Any]: "object",
}


def _examples(lines: list[str]) -> list[tuple[int, str]]:
    """Return (line number, text) of every non-blank line inside a ```json block."""
    found: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(lines, start=1):
        if line.startswith("```"):
            fence = line[3:].strip() if fence is None else None
        elif fence == "json" and line.strip():
            found.append((number, line))
    return found


def _sections(lines: list[str]) -> dict[str, list[str]]:
    """Return the lines of each ``### `name` `` section, up to the next heading."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if HEADING.match(line):
            match = SECTION.match(line)
            current = sections.setdefault(match.group(1), []) if match else None
        elif current is not None:
            current.append(line)
    return sections


def _table(lines: list[str]) -> list[tuple[str, str, str]]:
    """Return (field, type, required) of each field row (a row whose first cell is `code`)."""
    rows = []
    for line in lines:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 4:
            rows.append((cells[0].strip("`"), cells[1], cells[2]))
    return rows


def _kind_name(field: str, hint: Any) -> str:
    """Return the documented kind of a field: its Values-table name."""
    if field == "currency":
        return "currency"
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return KIND_NAMES[hint]


def _envelope_lines(lines: list[str]) -> list[str]:
    """Return the lines of the '## The envelope' section."""
    start = lines.index("## The envelope") + 1
    end = next(i for i in range(start, len(lines)) if HEADING.match(lines[i]))
    return lines[start:end]


EXAMPLES = _examples(LINES)
SECTIONS = _sections(LINES)


def test_doc_has_an_example_per_type_at_least():
    """The extraction finds at least one example per fact type: it is not silently empty."""
    assert len(EXAMPLES) >= len(FACT_TYPES)


@pytest.mark.parametrize(
    "example", [line for _, line in EXAMPLES], ids=[f"line{number}" for number, _ in EXAMPLES]
)
def test_example_parses(example: str):
    """Every one-line JSON example in docs/events.md is a valid canonical record."""
    record = orjson.loads(example)
    assert isinstance(record, dict)
    assert parse_fact(record).type_name == record["type"]


def test_every_fact_type_has_a_section():
    """Every type in FACT_TYPES has its own section in docs/events.md."""
    assert sorted(set(FACT_TYPES) - set(SECTIONS)) == []


def test_every_section_is_a_fact_type():
    """docs/events.md documents no type that the catalogue does not have."""
    assert sorted(set(SECTIONS) - set(FACT_TYPES)) == []


@pytest.mark.parametrize("type_name", sorted(FACT_TYPES))
def test_section_has_an_example_of_its_type(type_name: str):
    """Each type's section holds a JSON example of that very type."""
    examples = _examples(SECTIONS.get(type_name, []))
    assert examples, f"no example in the {type_name} section"
    assert {orjson.loads(line)["type"] for _, line in examples} == {type_name}


@pytest.mark.parametrize("type_name", sorted(FACT_TYPES))
def test_section_table_lists_exactly_the_type_fields(type_name: str):
    """Each type's table lists the type's domain fields, in the catalogue's order."""
    documented = [field for field, _, _ in _table(SECTIONS.get(type_name, []))]
    assert documented == list(domain_fields(FACT_TYPES[type_name]))


@pytest.mark.parametrize("type_name", sorted(FACT_TYPES))
def test_section_table_gives_each_field_kind_and_requirement(type_name: str):
    """Each field row states the field's kind and whether it is required, as the code has it."""
    cls = FACT_TYPES[type_name]
    hints, required = domain_fields(cls), required_fields(cls)
    expected = [
        (field, _kind_name(field, hint), "yes" if field in required else "no")
        for field, hint in hints.items()
    ]
    assert _table(SECTIONS.get(type_name, [])) == expected


def test_envelope_table_lists_the_envelope():
    """The envelope table lists type, the envelope fields and the optional recorded_at."""
    rows = _table(_envelope_lines(LINES))
    expected = [
        ("type", "string", "yes"),
        *[
            (field, "timestamp" if field == "occurred_at" else "string", "yes")
            for field in ENVELOPE
        ],
        ("recorded_at", "timestamp", "no"),
    ]
    assert rows == expected
