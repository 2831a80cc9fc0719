"""Bitemporal rows: a subject's derived rows, each with the ledger-time span it was known for.

For every distinct ledger time at which one of the subject's facts (or corrections) was recorded,
the subject is derived from the facts known then; a row gets ``known_from`` when it first
appears and ``known_to`` when it disappears (``FOREVER`` while it still holds). Rows that never
become visible are never written. See docs/metrics.md, section "Two timelines".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ledger.events import Fact
from projections.corrections import Family, order_key
from projections.leads import derive_lead
from projections.opportunities import derive_opportunity
from projections.periods import FOREVER, to_us

Row = tuple[Any, ...]
Deriver = Callable[[Sequence[Fact]], dict[str, set[Row]]]

DERIVERS: dict[str, Deriver] = {"lead": derive_lead, "opp": derive_opportunity}
SUBJECT_KINDS = {"lead_id": "lead", "opportunity_id": "opp"}


def known_rows(families: Iterable[Family], kind: str, subject: str) -> dict[str, list[Row]]:
    """Every row derived for ``subject`` over ledger time, with (known_from, known_to) appended."""
    return versioned_rows(list(families), DERIVERS[kind], subject)


def versioned_rows(families: list[Family], derive: Deriver, subject: str) -> dict[str, list[Row]]:
    """Derive ``subject`` at each ledger time its facts changed; version the rows that result."""
    times = sorted(
        {to_us(f.recorded_at) for family in families for f in (family.root, *family.corrections)}
    )
    opened: dict[str, dict[Row, int]] = {}
    out: dict[str, list[Row]] = {}
    for known_at in times:
        facts = [
            fact
            for family in families
            if (fact := family.effective(known_at)) is not None and fact.subject == subject
        ]
        derived = derive(sorted(facts, key=order_key)) if facts else {}
        for table in derived.keys() | opened.keys():
            now = derived.get(table, set())
            live = opened.setdefault(table, {})
            for row in [row for row in live if row not in now]:
                out.setdefault(table, []).append((*row, live.pop(row), known_at))
            for row in now:
                live.setdefault(row, known_at)
    for table, live in opened.items():
        out.setdefault(table, []).extend((*row, since, FOREVER) for row, since in live.items())
    return out
