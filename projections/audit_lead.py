"""``audit lead ID``: one lead's full timeline, with provenance and the definition's verdict.

Every fact about the lead, and every correction of one, in business order: business and ledger
times, source, source id, actor, the definition version in force at the business time, what the
fact says, and its status (``retracted by …``, ``amended by …``). A CRM stage change into a stage
that has a rule carries the definition's verdict at that instant (``agrees`` or ``disagrees``,
with the conditions that failed), so a disagreement between the CRM and the agreed rule is shown
where it happened. See docs/definitions.md, "Audit".
"""

from __future__ import annotations

from typing import Any

from ledger.errors import RevledgerError
from ledger.events import Fact, FactAmended, FactRetracted
from projections.corrections import Family, order_key
from projections.definitions import Catalogue
from projections.periods import FOREVER
from projections.qualification import effective_facts, evaluate, view_at
from projections.report import Report

COLUMNS = [
    "occurred_at",
    "recorded_at",
    "type",
    "source",
    "source_id",
    "actor",
    "definition",
    "detail",
    "status",
    "verdict",
]
ENVELOPE_SKIP = {"lead_id"}


class LeadNotFound(RevledgerError):
    """No fact in the ledger is about the lead asked for."""


def _detail(fact: Fact) -> str:
    if isinstance(fact, (FactRetracted, FactAmended)):
        what = "retracts" if isinstance(fact, FactRetracted) else f"amends {fact.changes} in"
        return f"{what} {fact.target_source}/{fact.target_source_id}: {fact.reason}"
    if fact.type_name == "qualification_evaluated":
        results: dict[str, Any] = fact.results  # type: ignore[attr-defined]
        return "; ".join(
            f"{stage} {'met' if r['met'] == 'yes' else 'not met'}"
            + (f" (failed: {', '.join(c for c, _ in r['failed'])})" if r["failed"] else "")
            for stage, r in results.items()
        )
    fields = {
        k: v
        for k, v in fact.payload().items()
        if k not in ENVELOPE_SKIP and v not in (None, {}, ())
    }
    return ", ".join(f"{k}={v}" for k, v in fields.items())


def _status(family: Family, fact: Fact) -> str:
    if fact is not family.root:
        return "correction"
    latest = family.effective(FOREVER)
    by = [f"{c.source}/{c.source_id}" for c in sorted(family.corrections, key=order_key)]
    if latest is None:
        return f"retracted ({', '.join(by)})"
    return f"amended ({', '.join(by)})" if family.corrections else ""


def audit_lead(lead_id: str, families: list[Family], catalogue: Catalogue) -> Report:
    """The lead's timeline report."""
    if not families:
        raise LeadNotFound(f"no fact in the ledger is about lead {lead_id!r}")
    effective = effective_facts(lead_id, families, FOREVER)
    members = sorted(
        ((family, fact) for family in families for fact in (family.root, *family.corrections)),
        key=lambda pair: order_key(pair[1]),
    )
    rows = []
    disagreements = 0
    for family, fact in members:
        version = catalogue.in_force(fact.occurred_at)
        verdict = ""
        stage = getattr(fact, "to_stage", None) if fact.type_name == "stage_changed" else None
        if version is not None and stage is not None and version.definition.rule_for(stage):
            outcome = evaluate(version.definition, view_at(effective, fact.occurred_at))[stage]
            if outcome.met:
                verdict = "agrees"
            else:
                disagreements += 1
                verdict = f"disagrees: {', '.join(text for text, _ in outcome.failed)}"
        rows.append(
            [
                fact.occurred_at,
                fact.recorded_at,
                fact.type_name,
                fact.source,
                fact.source_id,
                fact.actor,
                version.name if version else "",
                _detail(fact),
                _status(family, fact),
                verdict,
            ]
        )
    notes = [
        (
            f"{len(rows)} facts; {disagreements} CRM stage change(s) disagree with the definition "
            "in force; times in UTC"
        )
    ]
    return Report(f"Audit of lead {lead_id}", COLUMNS, rows, notes)
