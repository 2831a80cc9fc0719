"""What-if: re-count a period under another definition version, next to what was counted.

For each stage with an automatic rule, three counts of leads over ``[from, to]`` (docs/
definitions.md, "What-if"):

- **crm**: leads whose recorded stage changes entered the stage in the period;
- **in force**: leads that became qualified for it in the period under the version in force at
  each instant (the count the agreed definition produced);
- **what-if**: the same re-count under the chosen version for the whole period.

A lead *becomes qualified* at a trigger fact when the rule holds there and did not hold at the
lead's previous trigger fact. Nothing is written to the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from ledger.definitions import Definition
from ledger.events import Fact
from projections.definitions import Catalogue
from projections.qualification import TRIGGERS, LeadView
from projections.report import Report

Chooser = Callable[[datetime], Definition | None]


def entries(facts: Iterable[Fact], stage: str, choose: Chooser) -> list[tuple[datetime, str]]:
    """When the lead became qualified for ``stage``, and under which version."""
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


def crm_entries(facts: Iterable[Fact], stage: str) -> list[datetime]:
    """When the source systems recorded the lead entering ``stage``."""
    return [
        f.occurred_at
        for f in facts
        if f.type_name == "stage_changed" and f.to_stage == stage  # type: ignore[attr-defined]
    ]


def _yes(flag: bool) -> str:  # noqa: FBT001 - formats one flag; the name says it all
    return "yes" if flag else "no"


def in_force_chooser(catalogue: Catalogue) -> Chooser:
    """The definition in force at each instant."""
    in_force = catalogue.in_force_now()

    def choose(at: datetime) -> Definition | None:
        version = in_force(at)
        return version.definition if version else None

    return choose


def whatif(
    leads: Iterable[tuple[str, list[Fact]]],
    catalogue: Catalogue,
    version: str,
    span: tuple[datetime, datetime],
    *,
    per_lead: bool = False,
) -> Report:
    """The side-by-side counts (or, with ``per_lead``, one row per lead that counts anywhere)."""
    target = catalogue.get(version).definition
    stages = list(dict.fromkeys(t.to for t in target.transitions))
    actual = in_force_chooser(catalogue)
    start, end = span

    def inside(moments: Iterable[datetime]) -> bool:
        return any(start <= m < end for m in moments)

    totals = {stage: [0, 0, 0] for stage in stages}
    rows: list[list[object]] = []
    for lead_id, facts in leads:
        for stage in stages:
            crm = inside(crm_entries(facts, stage))
            counted = [v for at, v in entries(facts, stage, actual) if start <= at < end]
            again = inside(at for at, _ in entries(facts, stage, lambda _at: target))
            for index, flag in enumerate((crm, bool(counted), again)):
                totals[stage][index] += flag
            if per_lead and (crm or counted or again):
                change = (
                    "gained" if again and not counted else "lost" if counted and not again else ""
                )
                versions = ",".join(dict.fromkeys(counted))
                rows.append([lead_id, stage, _yes(crm), versions, _yes(again), change])
    period = f"{start:%Y-%m-%d} to {end:%Y-%m-%d} (exclusive)"
    notes = [
        (
            f"{period}; in force = the approved version at each instant; "
            f"what-if = {version} throughout"
        ),
        "nothing was written to the ledger; definitions: docs/definitions.md",
    ]
    if per_lead:
        columns = ["lead_id", "stage", "crm", "in_force_versions", f"under_{version}", "change"]
        return Report(f"What-if under {version}, lead by lead", columns, rows, notes)
    summary = [
        [stage, crm, counted, again, again - counted]
        for stage, (crm, counted, again) in totals.items()
    ]
    columns = ["stage", "crm", "in_force", f"under_{version}", "difference"]
    return Report(f"What-if under {version}", columns, summary, notes)
