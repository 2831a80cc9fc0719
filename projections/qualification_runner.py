"""``definitions evaluate``: record a qualification with provenance whenever a lead's facts change.

Exactly once. The evaluator reads the ledger after its checkpoint (key ``qualification``); for
every trigger fact (``lead_captured``, ``lead_updated``, ``score_changed``, ``touch_recorded``,
``stage_changed``) of a lead, it evaluates the definition version in force at the fact's
business time and records a ``qualification_evaluated`` fact. Each page's facts and the new
checkpoint are written by one ``Ledger.record`` call (one transaction), and every fact's
``source_id`` is derived from (lead, version, trigger fact), so a crash or a re-run never records
an evaluation twice. The lead's facts are those the ledger held when the trigger was recorded;
the definitions are those approved when the run starts (so facts loaded before a definition was
approved are evaluated by the first run after it). A fact already evaluated is not re-evaluated
when a later approval changes the version in force at its time: ``definitions whatif`` re-counts
any period under any version. See docs/definitions.md, "Evaluation".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from ledger.application import Ledger
from ledger.codec import parse_fact
from ledger.events import Fact
from projections.definitions import SOURCE, Catalogue
from projections.periods import to_us
from projections.qualification import (
    TRIGGERS,
    LeadHistories,
    effective_facts,
    evaluate,
    results_document,
    view_at,
)

KEY = "qualification"
ACTOR = "revledger-evaluator"
PAGE = 1000
Progress = Callable[[int], None]


def _ignore(_count: int) -> None:
    """A progress callback that shows nothing."""


@dataclass
class EvaluationSummary:
    """What one run did: facts read, evaluations recorded, and evaluations already recorded."""

    read: int = 0
    recorded: int = 0
    duplicates: int = 0


def evaluation_id(lead_id: str, version: str, trigger: Fact) -> str:
    """The deterministic ``source_id`` of the evaluation of ``trigger`` under ``version``."""
    return f"qualification/{lead_id}/{version}/{trigger.source}/{trigger.source_id}"


class Evaluator:
    """Evaluates the definition in force for every new lead fact of one ledger."""

    def __init__(self, ledger: Ledger, *, page: int = PAGE) -> None:
        """Bind to ``ledger``; ``page`` facts are evaluated and committed at a time."""
        self.ledger = ledger
        self.page = page

    def position(self) -> int:
        """The ledger position up to which facts have been evaluated."""
        return self.ledger.checkpoint(KEY)

    def run(
        self, progress: Progress = _ignore, stop: threading.Event | None = None
    ) -> EvaluationSummary:
        """Evaluate every fact recorded since the checkpoint, up to the ledger's current end."""
        summary = EvaluationSummary()
        end = self.ledger.position()
        after = self.position()
        if after >= end:
            return summary
        catalogue = Catalogue.load(self.ledger)
        histories = LeadHistories(self.ledger)
        try:
            while after < end and (stop is None or not stop.is_set()):
                page = [(n, f) for n, f in self.ledger.read(after, self.page) if n <= end]
                if not page:
                    break
                facts = self._evaluate(page, catalogue, histories) if catalogue.versions else []
                result = self.ledger.record(facts, checkpoint=(KEY, page[-1][0]))
                summary.read += len(page)
                summary.recorded += len(result.recorded)
                summary.duplicates += len(result.duplicates)
                after = page[-1][0]
                progress(len(page))
        finally:
            histories.close()
        return summary

    def _evaluate(
        self, page: list[tuple[int, Fact]], catalogue: Catalogue, histories: LeadHistories
    ) -> list[Fact]:
        work = []
        in_force = catalogue.in_force_now()
        for _position, fact in page:
            if fact.type_name not in TRIGGERS:
                continue
            version = in_force(fact.occurred_at)
            if version is not None and version.definition.transitions:
                work.append((fact, version))
        families = histories.families({fact.subject for fact, _ in work})
        out = []
        for trigger, version in work:
            lead = families.get(trigger.subject, [])
            facts = effective_facts(trigger.subject, lead, to_us(trigger.recorded_at))
            view = view_at(facts, trigger.occurred_at)
            outcomes = evaluate(version.definition, view)
            out.append(
                parse_fact(
                    {
                        "type": "qualification_evaluated",
                        "occurred_at": trigger.occurred_at,
                        "source": SOURCE,
                        "source_id": evaluation_id(trigger.subject, version.name, trigger),
                        "actor": ACTOR,
                        "lead_id": trigger.subject,
                        "definition_version": version.name,
                        "trigger_source": trigger.source,
                        "trigger_source_id": trigger.source_id,
                        "qualified": [s for s, o in outcomes.items() if o.met],
                        "results": results_document(outcomes, version.definition),
                        "crm_stage": view.stage,
                    }
                )
            )
        return out
