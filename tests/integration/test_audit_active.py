"""The definition audits read only the leads a span can concern, and say what a full read says.

``audit disagreements`` reads the leads with a stage change into a stage with a rule in the span
(projected stays, and changes into the stage a lead is in already), with the facts its rules
read; ``definitions whatif`` the leads with a fact of the types it looks at in the span (plus
every lead with a corrected fact); ``audit definitions`` only the ``qualification_evaluated``
facts. The reference is each report over every lead's effective
facts, as first written; they must agree on a ledger whose corrections move facts in and out of
the spans, retract them, and retract or move recorded evaluations.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.synthetic import generate
from ledger.application import open_ledger
from ledger.codec import parse_fact
from projections.audit_api import FunnelAudit, span_of
from projections.audit_history import disagreements, history
from projections.definitions import DefinitionBook
from projections.periods import Calendar
from projections.qualification_runner import Evaluator
from projections.runner import Projection
from tests.integration.test_definitions_workflow import BODY, write
from tests.integration.test_whatif_reading import reference

SPANS = [
    (date(2025, 1, 1), date(2025, 1, 31)),
    (date(2025, 3, 10), date(2025, 3, 10)),
    (date(2025, 6, 1), date(2025, 11, 30)),
    (date(2024, 11, 1), date(2026, 10, 31)),
]
MOVABLE = ("stage_changed", "score_changed", "touch_recorded", "lead_captured")
V3 = (  # rules on touches, attributes and captured fields, into two stages
    'version = "v3"\neffective_from = 2025-09-01\nchange_note = "n"\n' + BODY
    + """rule = 'count(touches where channel = "webinar") >= 1 or attributes.segment = "enterprise"'
[[transitions]]
from = ["mql"]
to = "sal"
rule = 'has(company) and score >= 40'
"""
)  # fmt: skip


def _fix(number: int, target: dict[str, Any], **what: Any) -> dict[str, Any]:
    return {"source": "fix", "source_id": f"c{number}", "actor": "ops", "reason": "fix",
            "occurred_at": "2026-11-01T00:00:00Z", "target_source": target["source"],
            "target_source_id": target["source_id"], **what}  # fmt: skip


def _corrections(records: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Retract facts and move others in business time, into and out of the spans."""
    movable = [r for r in records if r["type"] in MOVABLE and "lead_id" in r]
    fixes = []
    for number, target in enumerate(rng.sample(movable, 90)):
        if number % 3 == 0:
            fixes.append(_fix(number, target, type="fact_retracted"))
            continue
        moved = span_of(*rng.choice(SPANS[:3]))[0] + timedelta(hours=rng.randint(0, 240))
        changes = {"occurred_at": moved.isoformat()}
        fixes.append(_fix(number, target, type="fact_amended", changes=changes))
    return fixes


def _again(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stage changes into mql of leads in mql already: the only ones some leads have in a span.

    On the first day of the first three SPANS, for leads that entered mql before it and stayed;
    and at the same instant as a lead's entry, after it.
    """
    changes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["type"] == "stage_changed":
            changes[r["lead_id"]].append(r)
    days = [span_of(*span)[0] + timedelta(hours=12) for span in SPANS[:3]]
    out = []
    for ordered in changes.values():
        ordered.sort(key=lambda r: datetime.fromisoformat(r["occurred_at"]))
        for r, after in zip(ordered, [*ordered[1:], None], strict=True):
            if r["to_stage"] != "mql":
                continue
            at = datetime.fromisoformat(r["occurred_at"])
            later = None if after is None else datetime.fromisoformat(after["occurred_at"])
            for n, day in enumerate(days):
                if at < day and (later is None or later > day):
                    moment = day.isoformat()
                    out.append({**r, "source_id": f"{r['source_id']}-on{n}", "occurred_at": moment})
            if len(out) % 3 == 0:
                out.append({**r, "source_id": f"{r['source_id']}-again"})
    assert sum("-on" in r["source_id"] for r in out) >= 2
    return out


def _ledger(url: str, tmp_path: Path) -> Any:
    rng = random.Random(11)  # noqa: S311 - test data, not secrets
    ledger = open_ledger(url)
    records = list(generate(220, seed=9))
    for start in range(0, len(records), 500):
        ledger.record([parse_fact(r) for r in records[start : start + 500]])
    ledger.record([parse_fact(r) for r in _corrections(records, rng)])
    ledger.record([parse_fact(r) for r in _again(records)])
    book = DefinitionBook(ledger)
    book.propose(
        write(tmp_path, "v1", "2024-11-01", 'score >= 55 and fit in ("A", "B", "C")'), "cmo"
    )
    book.propose(write(tmp_path, "v2", "2025-05-01", 'score >= 65 and fit in ("A", "B")'), "cmo")
    v3 = tmp_path / "v3.toml"
    v3.write_text(V3)
    book.propose(v3, "cmo")
    roles = (("marketing", "cmo"), ("sales", "cro"))
    for version, (role, actor) in itertools.product(("v1", "v2", "v3"), roles):
        book.approve(version, role, actor)
    Evaluator(ledger).run()
    return ledger


def _evaluation_fixes(audit: FunnelAudit, rng: random.Random) -> list[dict[str, Any]]:
    """Retract some recorded evaluations and move others in business time."""
    facts = [f for _, fs in audit.histories.of_type("qualification_evaluated") for f in fs]
    fixes = []
    for number, target in enumerate(rng.sample(facts, 12)):
        ref = {"source": target.source, "source_id": target.source_id}
        if number % 2:
            fixes.append(_fix(100 + number, ref, type="fact_retracted"))
        else:
            changes = {"occurred_at": "2025-08-15T12:00:00Z"}
            fixes.append(_fix(100 + number, ref, type="fact_amended", changes=changes))
    return fixes


@pytest.mark.parametrize("built", ["caught up", "rebuilt"])
def test_definition_audits_over_active_leads_match_every_lead(
    db_url: str, tmp_path: Path, built: str
):
    """Disagreements, what-if (both versions) and history equal the reports over every lead.

    With the fact index as catch-up extends it and as a rebuild writes it.
    """
    ledger = _ledger(db_url, tmp_path)
    audit = FunnelAudit(ledger)
    fixes = _evaluation_fixes(audit, random.Random(5))  # noqa: S311 - test data
    audit.close()
    ledger.record([parse_fact(r) for r in fixes])
    if built == "rebuilt":
        projection = Projection(ledger)
        projection.rebuild()
        projection.close()
    audit = FunnelAudit(ledger)
    try:
        leads = list(audit.histories.every())
        catalogue = audit.catalogue
        for calendar in (Calendar("month"), Calendar("week")):
            got = audit.history(calendar)
            want = history(leads, catalogue, calendar, datetime.now(UTC))
            assert got.rows == want.rows, calendar
        assert sum(row[8] for row in got.rows) > 0
        seen = {"disagree": 0, "whatif": 0}
        judged = set()
        for start, end in SPANS:
            span = span_of(start, end)
            for per_lead in (False, True):
                got = audit.disagreements(start, end, per_lead=per_lead).rows
                assert got == disagreements(leads, catalogue, span, per_lead=per_lead).rows
                seen["disagree"] += len(got)
                if not per_lead:
                    judged |= {(row[0], row[1], row[3] > 0) for row in got}
                for version in ("v1", "v2"):
                    got = audit.whatif(version, start, end, per_lead=per_lead).rows
                    want = reference(leads, catalogue, version, span, per_lead=per_lead)
                    assert got == want, (version, start, per_lead)
                    seen["whatif"] += sum(1 for row in got if any(row[1:]))
            active = list(audit.histories.active(("stage_changed",), span))
            if end - start < timedelta(days=40):  # a month reads a fraction of the leads
                assert len(active) < len(leads) / 2, (start, len(active))
        assert seen["disagree"] > 0
        assert seen["whatif"] > 0
        # each version's rules judged (v3's two stages), some entries against the rule
        assert {(v, s) for v, s, _ in judged} == {("v1", "mql"), ("v2", "mql"), ("v3", "mql"),
                                                  ("v3", "sal")}  # fmt: skip
        assert any(against for _, _, against in judged)
    finally:
        audit.close()
        ledger.close()
