"""Bitemporal rows: a subject's derived rows, each with the ledger-time span it was known for.

For every distinct ledger time at which one of the subject's facts (or corrections) was recorded,
the subject is derived from the facts known then; a row gets ``known_from`` when it first
appears and ``known_to`` when it disappears (``FOREVER`` while it still holds). Rows that never
become visible are never written. See docs/metrics.md, section "Two timelines".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
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
    """Derive ``subject`` at each ledger time its facts changed; version the rows that result.

    Most families are a single fact, which counts from its own ledger time on: those are put in
    business order once, and only the families with corrections are resolved at each time. A
    subject whose facts were all recorded at one ledger time, uncorrected, is derived once.
    """
    plain, corrected, times = _split(families, subject)
    if not corrected and len(times) == 1:
        return _one_version(plain, derive, min(times))
    opened: dict[str, dict[Row, int]] = {}
    out: dict[str, list[Row]] = {}
    for known_at in sorted(times):
        facts = [fact for _, recorded, fact in plain if recorded <= known_at]
        if corrected:
            facts.extend(
                fact
                for family in corrected
                if (fact := family.effective(known_at)) is not None and fact.subject == subject
            )
            facts.sort(key=order_key)
        derived = derive(facts) if facts else {}
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


def _split(
    families: list[Family], subject: str
) -> tuple[list[tuple[Any, int, Fact]], list[Family], set[int]]:
    """Sort out ``families``: uncorrected facts, corrected families, ledger times.

    Returns the uncorrected facts about ``subject`` as (business order, ledger time, fact) in
    business order, the families with corrections, and every ledger time a fact was recorded at.
    """
    plain: list[tuple[Any, int, Fact]] = []
    corrected: list[Family] = []
    times: set[int] = set()
    for family in families:
        recorded = family.recorded_us
        times.add(recorded)
        if family.corrections:
            corrected.append(family)
            times.update(to_us(c.recorded_at) for c in family.corrections)
        elif family.subject == subject:
            plain.append((family.order, recorded, family.root))
    plain.sort(key=_first)  # the keys are unique: (source, source_id) names one fact
    return plain, corrected, times


def _one_version(
    plain: list[tuple[Any, int, Fact]], derive: Deriver, known_at: int
) -> dict[str, list[Row]]:
    """The rows of facts all recorded at ``known_at``: known from then on, never superseded."""
    derived = derive([fact for _, _, fact in plain]) if plain else {}
    return {table: [(*row, known_at, FOREVER) for row in rows] for table, rows in derived.items()}


_first = itemgetter(0)
