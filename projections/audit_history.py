"""``audit definitions`` and ``audit disagreements``: what each version did, and where CRM differs.

History: for each version, its status, when it was in force, who proposed and approved it, and
the leads it qualified per period — counted from the recorded ``qualification_evaluated`` facts
(a lead counts when a stage enters its ``qualified`` list). Disagreements: every CRM stage change
into a stage with a rule, judged by the version in force at that instant.
See docs/definitions.md, "Audit".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from ledger.events import Fact
from projections.definitions import Catalogue
from projections.periods import Calendar, to_us
from projections.qualification import LeadView
from projections.report import Report

HISTORY = ["version", "status", "in_force_from", "in_force_until", "proposed_by",
           "approved_by", "period", "stage", "qualified"]  # fmt: skip


def history(
    leads: Iterable[tuple[str, list[Fact]]], catalogue: Catalogue, calendar: Calendar, now: datetime
) -> Report:
    """One row per version and period in which it qualified leads (or one row if none)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for _lead, facts in leads:
        held: set[str] = set()
        for fact in facts:
            if fact.type_name != "qualification_evaluated":
                continue
            qualified = set(fact.qualified)  # type: ignore[attr-defined]
            period = calendar.label(calendar.bucket(to_us(fact.occurred_at)))
            for stage in qualified - held:
                counts[(fact.definition_version, period, stage)] += 1  # type: ignore[attr-defined]
            held = qualified
    spans = {v.name: (start, end) for v, start, end in catalogue.spans()}
    rows: list[list[object]] = []
    for name, version in catalogue.versions.items():
        start, end = spans.get(name, (None, None))
        approvers = ", ".join(
            f"{a.role}: {a.actor} ({a.at:%Y-%m-%d})" for a in version.approvals.values()
        )
        head = [name, catalogue.status(name, now), start, end, version.proposed_by, approvers]
        mine = sorted((k, n) for k, n in counts.items() if k[0] == name)
        rows.extend([*head, period, stage, n] for (_, period, stage), n in mine)
        if not mine:
            rows.append([*head, None, None, 0])
    notes = [f"counts from recorded qualification_evaluated facts, by {calendar.kind}"]
    return Report("Definition history", HISTORY, rows, notes)


def disagreements(
    leads: Iterable[tuple[str, list[Fact]]],
    catalogue: Catalogue,
    span: tuple[datetime, datetime],
    *,
    per_lead: bool = False,
) -> Report:
    """CRM stage entries in ``span`` that the version in force agrees or disagrees with.

    Each lead's facts need only be the stage changes and the types its rules read
    (:func:`~projections.qualification.facts_read`).
    """
    start, end = span
    in_force = catalogue.in_force_now()
    totals: Counter[tuple[str, str, str]] = Counter()
    rows: list[list[object]] = []
    for lead_id, facts in leads:
        view, folded = LeadView(), 0  # the lead as of the facts folded so far
        for fact in facts:
            stage = getattr(fact, "to_stage", None)
            if fact.type_name != "stage_changed" or not start <= fact.occurred_at < end:
                continue
            version = in_force(fact.occurred_at)
            if version is None or stage is None:
                continue
            rule = version.definition.rule_for(stage)  # the first transition's, as evaluate's
            if rule is None:
                continue
            while folded < len(facts) and facts[folded].occurred_at <= fact.occurred_at:
                view.apply(facts[folded])  # as of the change: every fact until its instant
                folded += 1
            outcome = rule.evaluate(view) if per_lead else None  # which conditions failed
            met = rule.holds(view) if outcome is None else outcome.met
            totals[(version.name, stage, "agree" if met else "disagree")] += 1
            if outcome is not None and not met:
                failed = ", ".join(text for text, _ in outcome.failed)
                rows.append([lead_id, fact.occurred_at, stage, version.name, fact.source,
                             fact.source_id, failed])  # fmt: skip
    notes = [f"CRM stage changes from {start:%Y-%m-%d} to {end:%Y-%m-%d} (exclusive)"]
    if per_lead:
        columns = ["lead_id", "occurred_at", "stage", "version", "source", "source_id", "failed"]
        return Report("CRM stages the definition disagrees with", columns, rows, notes)
    keys = sorted({(v, s) for v, s, _ in totals})
    summary = [[v, s, totals[(v, s, "agree")], totals[(v, s, "disagree")]] for v, s in keys]
    return Report("CRM vs definition", ["version", "stage", "agree", "disagree"], summary, notes)
