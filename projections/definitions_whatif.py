"""What-if: re-count a period under another definition version, next to what was counted.

For each stage with an automatic rule, three counts of leads over ``[from, to]`` (docs/
definitions.md, "What-if"):

- **crm**: leads whose recorded stage changes entered the stage in the period;
- **in force**: leads that became qualified for it in the period under the version in force at
  each instant (the count the agreed definition produced);
- **what-if**: the same re-count under the chosen version for the whole period.

A lead *becomes qualified* at a trigger fact when the rule holds there and did not hold at the
lead's previous trigger fact. Nothing is written to the ledger.

A rule's outcome changes only with the facts it reads (:func:`~projections.qualification.
facts_read`), so a lead can be read without the trigger types no rule reads (touches, unless a
rule counts them): such a trigger is only an instant at which the rule in force judges the lead
as it was at the previous trigger. It matters only when a definition in force at such an instant
judges the lead otherwise than the previous trigger's did (a version taking effect between two
triggers); :func:`entries` says when that may be, and the caller reads that lead's every
trigger.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from ledger.definitions import Definition
from ledger.events import Fact
from ledger.rules import Rule
from projections.definitions import Catalogue
from projections.qualification import TRIGGERS, LeadView, facts_read
from projections.report import Report

Leads = Iterable[tuple[str, list[Fact]]]
Reread = Callable[[list[str]], dict[str, list[Fact]]]  # leads -> their every trigger fact
REREAD_BATCH = 400  # leads re-read with every trigger at a time


class Regime:
    """Which definition is in force at each instant.

    ``before`` until the first of ``starts`` (ascending), then each start's definition until
    the next start.
    """

    def __init__(
        self,
        starts: Sequence[datetime] = (),
        definitions: Sequence[Definition] = (),
        before: Definition | None = None,
    ) -> None:
        """A regime of ``definitions`` taking effect at ``starts``, ``before`` before them."""
        self.starts = list(starts)
        self.definitions: list[Definition | None] = [before, *definitions]
        self._reads: dict[int, frozenset[str]] = {}

    @classmethod
    def in_force(cls, catalogue: Catalogue) -> Regime:
        """The approved versions, each in force from its effective time (none before any)."""
        spans = catalogue.spans()
        return cls([since for _, since, _ in spans], [v.definition for v, _, _ in spans])

    def at(self, at: datetime) -> Definition | None:
        """The definition in force at ``at``."""
        return self.definitions[bisect_right(self.starts, at)]

    def during(
        self, first: datetime | None, last: datetime, *, closed: bool
    ) -> list[Definition | None]:
        """The definitions in force at some instant from ``first`` to ``last``, in order.

        ``first`` None: from the start of time; ``last`` itself included when ``closed``.
        """
        low = 0 if first is None else bisect_right(self.starts, first)
        high = (bisect_right if closed else bisect_left)(self.starts, last)
        return self.definitions[low : max(low, high) + 1]

    def reads(self, rule: Rule) -> frozenset[str]:
        """The fact types ``rule`` reads (:func:`facts_read`), worked out once per rule."""
        found = self._reads.get(id(rule))
        if found is None:
            found = self._reads[id(rule)] = facts_read([rule])
        return found


def _rule(definition: Definition | None, stage: str) -> Rule | None:
    return definition.rule_for(stage) if definition is not None else None


def _holds(definition: Definition | None, stage: str, view: LeadView) -> bool:
    """Whether the rule of ``definition`` for ``stage`` holds over ``view`` (no rule: never)."""
    rule = _rule(definition, stage)
    return rule is not None and rule.holds(view)


class _Judge:
    """Folds one lead's trigger facts, judging it for one stage under one regime at each."""

    def __init__(self, regime: Regime, stage: str) -> None:
        """A lead with no fact yet, qualified for nothing."""
        self.regime, self.stage = regime, stage
        self.view = LeadView()
        self.met = False  # whether the rule held at the previous trigger
        self.last: datetime | None = None  # the previous trigger's instant
        self.judged: Rule | None = None  # the rule ``met`` comes from
        self.unjudged = False  # facts folded since the lead was last judged

    def fold(self, fact: Fact) -> None:
        """Fold a trigger fact without judging the lead there (:meth:`settle` judges the last)."""
        self.view.apply(fact)
        self.last = fact.occurred_at
        self.unjudged = True

    def settle(self) -> None:
        """Judge the lead at the last trigger folded, if :meth:`fold` left it unjudged."""
        if self.unjudged and self.last is not None:
            rule = _rule(self.regime.at(self.last), self.stage)
            self.met, self.judged = rule is not None and rule.holds(self.view), rule
            self.unjudged = False

    def take(self, fact: Fact) -> tuple[datetime, str] | None:
        """Fold a trigger fact: (when, version) if the lead became qualified there."""
        at = fact.occurred_at
        self.view.apply(fact)
        definition = self.regime.at(at)
        rule = _rule(definition, self.stage)
        if rule is None:
            now, self.judged = False, None
        elif rule is self.judged and fact.type_name not in self.regime.reads(rule):
            now = self.met  # what changed, the rule does not read
        else:
            now, self.judged = rule.holds(self.view), rule
        entry = None
        if now and not self.met and definition is not None:
            entry = (at, definition.version)
        self.met, self.last = now, at
        return entry

    def quiet(self, at: datetime, *, closed: bool) -> bool:
        """Whether a trigger not read, after the previous one and before ``at``, changes nothing.

        ``at`` itself included when ``closed``. A definition in force then would judge the lead
        as it was at the previous trigger: nothing changes when each such definition finds what
        the one then found (``met``), which is so when only that one is in force until ``at``.
        """
        defined = self.regime.during(self.last, at, closed=closed)
        if self.last is not None and len(defined) == 1:
            return True  # the one in force at the previous trigger found ``met``
        return all(_holds(definition, self.stage, self.view) == self.met for definition in defined)


def entries(
    facts: Iterable[Fact],
    stage: str,
    regime: Regime,
    span: tuple[datetime, datetime],
    *,
    every: bool = True,
) -> list[tuple[datetime, str]] | None:
    """When in ``span`` the lead became qualified for ``stage``, and under which version.

    Before the span the lead is only judged at its last trigger, whose verdict the first in the
    span is compared with. ``facts`` (business order) hold every trigger fact of the lead, or,
    unless ``every``, at least those of the types the regime's rules for ``stage`` read: None
    then when a trigger of another type, between the last before the span and the end of the
    span, could have been an instant a definition in force judged the lead otherwise than at
    the trigger before (see the module doc).
    """
    start, until = span
    judge, out = _Judge(regime, stage), []
    for fact in facts:
        if fact.type_name not in TRIGGERS:
            continue  # nothing else changes the view
        if fact.occurred_at < start:
            judge.fold(fact)
            continue
        if fact.occurred_at >= until:
            break
        judge.settle()
        if not every and not judge.quiet(fact.occurred_at, closed=True):
            return None
        if (entry := judge.take(fact)) is not None:
            out.append(entry)
    judge.settle()
    if not every and not judge.quiet(until, closed=False):
        return None
    return out


def crm_entries(facts: Iterable[Fact], stage: str) -> list[datetime]:
    """When the source systems recorded the lead entering ``stage``."""
    return [
        f.occurred_at
        for f in facts
        if f.type_name == "stage_changed" and f.to_stage == stage  # type: ignore[attr-defined]
    ]


def reading(catalogue: Catalogue, version: str, until: datetime) -> frozenset[str]:
    """The trigger types a what-if under ``version`` before ``until`` must read of each lead.

    The stage changes, and the types that the rules of ``version`` and of the versions in force
    before ``until`` read, for ``version``'s stages; every trigger when one of those rules
    holds over a lead with no fact of those types (a lead with none would not be read).
    """
    target = catalogue.get(version).definition
    defined = [target, *Regime.in_force(catalogue).during(None, until, closed=False)]
    stages = {transition.to for transition in target.transitions}
    rules = [rule for d in defined for stage in stages if (rule := _rule(d, stage)) is not None]
    if any(rule.holds(LeadView()) for rule in rules):
        return TRIGGERS
    return frozenset({"stage_changed", *facts_read(rules)})


def _yes(flag: bool) -> str:  # noqa: FBT001 - formats one flag; the name says it all
    return "yes" if flag else "no"


class _Tally:
    """The counts of :func:`whatif` (and its rows, lead by lead), added up a lead at a time."""

    def __init__(
        self,
        catalogue: Catalogue,
        target: Definition,
        span: tuple[datetime, datetime],
        *,
        per_lead: bool,
    ) -> None:
        """No lead counted yet, for each of ``target``'s stages (rows too with ``per_lead``)."""
        self.per_lead = per_lead
        self.stages = list(dict.fromkeys(t.to for t in target.transitions))
        self.actual, self.chosen = Regime.in_force(catalogue), Regime(before=target)
        self.span = span
        self.totals = {stage: [0, 0, 0] for stage in self.stages}
        self.rows: list[list[object]] = []

    def _inside(self, moments: Iterable[datetime]) -> bool:
        start, end = self.span
        return any(start <= moment < end for moment in moments)

    def add(self, lead_id: str, facts: list[Fact], *, every: bool) -> bool:
        """Count a lead, unless its facts (see :func:`entries`) cannot settle it: False then."""
        found = []
        for stage in self.stages:
            counted = entries(facts, stage, self.actual, self.span, every=every)
            again = entries(facts, stage, self.chosen, self.span, every=every)
            if counted is None or again is None:
                return False
            found.append((stage, [version for _, version in counted], again))
        for stage, versions, again in found:
            crm = self._inside(crm_entries(facts, stage))
            moved = self._inside(at for at, _ in again)
            for index, flag in enumerate((crm, bool(versions), moved)):
                self.totals[stage][index] += flag
            if self.per_lead and (crm or versions or moved):
                change = (
                    "gained" if moved and not versions else "lost" if versions and not moved else ""
                )
                listed = ",".join(dict.fromkeys(versions))
                self.rows.append([lead_id, stage, _yes(crm), listed, _yes(moved), change])
        return True


def whatif(  # noqa: PLR0913 - the report's inputs, and how to read a lead again
    leads: Leads,
    catalogue: Catalogue,
    version: str,
    span: tuple[datetime, datetime],
    *,
    per_lead: bool = False,
    reread: Reread | None = None,
) -> Report:
    """The side-by-side counts (or, with ``per_lead``, one row per lead that counts anywhere).

    ``leads`` come with every trigger fact, or, given ``reread``, with those of the types
    :func:`reading` names; a lead whose counts those cannot settle is read again with
    ``reread`` (every trigger fact of each of the leads it is given).
    """
    tally = _Tally(catalogue, catalogue.get(version).definition, span, per_lead=per_lead)
    pending: list[str] = []
    for lead_id, facts in leads:
        if not tally.add(lead_id, facts, every=reread is None):
            pending.append(lead_id)
    for first in range(0, len(pending), REREAD_BATCH):
        assert reread is not None  # every lead is settled when ``leads`` hold every trigger
        for lead_id, facts in sorted(reread(pending[first : first + REREAD_BATCH]).items()):
            tally.add(lead_id, facts, every=True)
    stages, rows = tally.stages, tally.rows
    rows.sort(key=lambda row: (row[0], stages.index(str(row[1]))))
    start, end = span
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
        for stage, (crm, counted, again) in tally.totals.items()
    ]
    columns = ["stage", "crm", "in_force", f"under_{version}", "difference"]
    return Report(f"What-if under {version}", columns, summary, notes)
