"""``definitions whatif`` reads only the trigger types the rules read, and counts as a full read.

The reference (:func:`reference`) is the report as first written, over every lead's effective
facts: each lead judged at every trigger fact. The rules here read no touches,
so the report reads none, and versions take effect between a lead's triggers: a lead whose
counts a trigger it did not read could change is read again whole. ``L9000001`` is such a lead:
under v1 its score fails, v2 takes effect, and the first trigger after that is a touch, where
it becomes qualified under v2 in May 2025; its next score change is in June.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.synthetic import generate
from ledger.application import open_ledger
from ledger.codec import parse_fact
from projections.audit_api import FunnelAudit, span_of
from projections.definitions import Catalogue, DefinitionBook
from projections.definitions_whatif import reading
from projections.qualification import TRIGGERS, LeadView
from tests.integration.test_definitions_workflow import write

VERSIONS = (
    ("v1", "2024-11-01", "score >= 70"),
    ("v2", "2025-05-01", 'score >= 50 and fit in ("A", "B")'),
    ("v3", "2025-09-01", "has(company) and score >= 40"),
)
SPANS = [
    (date(2025, 5, 1), date(2025, 5, 31)),
    (date(2025, 4, 1), date(2025, 6, 30)),
    (date(2025, 8, 15), date(2025, 9, 15)),
    (date(2024, 11, 1), date(2026, 10, 31)),
]
LEAD = "L9000001"


def _entries(facts: list[Any], stage: str, choose: Any) -> list[tuple[datetime, str]]:
    """When the lead became qualified for ``stage``, and under which version, at every trigger."""
    view, met, out = LeadView(), False, []
    for fact in facts:
        view.apply(fact)
        if fact.type_name not in TRIGGERS:
            continue
        definition = choose(fact.occurred_at)
        rule = definition.rule_for(stage) if definition else None
        now = bool(rule and rule.evaluate(view).met)
        if now and not met and definition is not None:
            out.append((fact.occurred_at, definition.version))
        met = now
    return out


def reference(
    leads: list[tuple[str, list[Any]]],
    catalogue: Catalogue,
    version: str,
    span: tuple[datetime, datetime],
    *,
    per_lead: bool,
) -> list[list[Any]]:
    """The rows of ``definitions whatif`` (summary or lead by lead) over every lead's facts."""
    target = catalogue.get(version).definition
    stages = list(dict.fromkeys(t.to for t in target.transitions))
    start, end = span

    def actual(at: datetime) -> Any:
        found = catalogue.in_force(at)
        return found.definition if found else None

    totals = {stage: [0, 0, 0] for stage in stages}
    rows = []
    for lead_id, facts in leads:
        for stage in stages:
            crm = any(start <= f.occurred_at < end and f.to_stage == stage
                      for f in facts if f.type_name == "stage_changed")  # fmt: skip
            counted = [v for at, v in _entries(facts, stage, actual) if start <= at < end]
            again = any(start <= at < end for at, _ in _entries(facts, stage, lambda _: target))
            for index, flag in enumerate((crm, bool(counted), again)):
                totals[stage][index] += flag
            if crm or counted or again:
                change = (
                    "gained" if again and not counted else "lost" if counted and not again else ""
                )
                yes = {True: "yes", False: "no"}
                listed = ",".join(dict.fromkeys(counted))
                rows.append([lead_id, stage, yes[crm], listed, yes[again], change])
    if per_lead:
        return rows
    return [[stage, crm, counted, again, again - counted]
            for stage, (crm, counted, again) in totals.items()]  # fmt: skip


def _fact(kind: str, at: str, number: int, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "occurred_at": at, "source": "crm", "source_id": f"x:{number}",
            "actor": "ops", "lead_id": LEAD, **fields}  # fmt: skip


def _lead() -> list[dict[str, Any]]:
    """Qualified under v2 at a touch (2025-05-10), the first trigger after v2 takes effect."""
    return [
        _fact("lead_captured", "2025-04-20T09:00:00Z", 1, email="a@b.example", company="B"),
        _fact("score_changed", "2025-04-20T09:00:01Z", 2, score=60, model_version="m", fit="A"),
        _fact(
            "touch_recorded",
            "2025-05-10T10:00:00Z",
            3,
            channel="email",
            touch_type="open",
            campaign_id="CMP001",
        ),
        _fact("score_changed", "2025-06-15T10:00:00Z", 4, score=61, model_version="m", fit="A"),
    ]


def _ledger(url: str, tmp_path: Path) -> Any:
    ledger = open_ledger(url)
    records = [*generate(160, seed=21), *_lead()]
    for start in range(0, len(records), 500):
        ledger.record([parse_fact(r) for r in records[start : start + 500]])
    book = DefinitionBook(ledger)
    for version, effective, rule in VERSIONS:
        book.propose(write(tmp_path, version, effective, rule), "cmo")
    roles = (("marketing", "cmo"), ("sales", "cro"))
    for (version, _, _), (role, actor) in itertools.product(VERSIONS, roles):
        book.approve(version, role, actor)
    return ledger


def test_whatif_reading_the_rules_types_counts_as_reading_every_trigger(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Every span and version, summary and lead by lead, equals the report over every fact."""
    ledger = _ledger(db_url, tmp_path)
    audit = FunnelAudit(ledger)
    read_again: list[str] = []
    some = audit.histories.some

    def spied(leads: list[str]) -> dict[str, Any]:
        read_again.extend(leads)
        return some(leads)

    monkeypatch.setattr(audit.histories, "some", spied)
    monkeypatch.setattr("projections.qualification.CHUNK", 9)  # leads read again 9 at a time
    try:
        leads = list(audit.histories.every())
        catalogue = audit.catalogue
        for (start, end), (version, _, _), per_lead in itertools.product(
            SPANS, VERSIONS, (False, True)
        ):
            span = span_of(start, end)
            assert "touch_recorded" not in reading(catalogue, version, span[1])
            got = audit.whatif(version, start, end, per_lead=per_lead).rows
            want = reference(leads, catalogue, version, span, per_lead=per_lead)
            assert got == want, (version, start, end, per_lead)
        may = audit.whatif("v1", date(2025, 5, 1), date(2025, 5, 31), per_lead=True).rows
        assert [LEAD, "mql", "no", "v2", "no", "lost"] in may
        assert LEAD in read_again
        assert len(set(read_again)) < len(leads) / 4  # most leads are settled by the first read
    finally:
        audit.close()
        ledger.close()


def test_a_rule_that_holds_over_a_lead_with_no_fact_reads_every_trigger(
    db_url: str, tmp_path: Path
):
    """A lead with none of the types read would not be read at all: every trigger is, then."""
    ledger = open_ledger(db_url)
    book = DefinitionBook(ledger)
    book.propose(write(tmp_path, "v1", "2024-11-01", "not has(score)"), "cmo")
    book.propose(write(tmp_path, "v2", "2025-11-01", "score >= 10"), "cmo")
    book.approve("v1", "marketing", "cmo")
    book.approve("v1", "sales", "cro")
    audit = FunnelAudit(ledger)
    try:
        end = span_of(date(2025, 1, 1), date(2025, 1, 31))[1]
        assert reading(audit.catalogue, "v1", end) == TRIGGERS
        assert reading(audit.catalogue, "v2", end) == TRIGGERS  # v1 is in force before the end
        assert reading(audit.catalogue, "v2", span_of(date(2024, 1, 1), date(2024, 1, 2))[1]) == {
            "stage_changed",
            "lead_captured",
            "lead_updated",
            "score_changed",
        }
    finally:
        audit.close()
        ledger.close()
