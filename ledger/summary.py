"""What the ledger holds: counts by type and source, subjects, and the spans of both timelines.

Computed by one streaming pass over the notification log (constant memory but for the sets of
distinct subject ids), so it needs no projection.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ledger.events import CORRECTIONS, Fact

SUBJECT_KINDS = ("lead_id", "opportunity_id", "account_id", "campaign_id")


@dataclass
class LedgerSummary:
    """Counts and time spans over every fact in the ledger."""

    facts: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    subjects: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in SUBJECT_KINDS})
    corrections: int = 0
    first_occurred: datetime | None = None
    last_occurred: datetime | None = None
    first_recorded: datetime | None = None
    last_recorded: datetime | None = None

    def add(self, fact: Fact) -> None:
        """Count one fact."""
        self.facts += 1
        self.by_type[fact.type_name] += 1
        self.by_source[fact.source] += 1
        state = vars(fact)
        for kind in SUBJECT_KINDS:
            value = state.get(kind)
            if value:
                self.subjects[kind].add(value)
        if isinstance(fact, CORRECTIONS):
            self.corrections += 1
        occurred, recorded = fact.occurred_at, fact.recorded_at
        if self.first_occurred is None or occurred < self.first_occurred:
            self.first_occurred = occurred
        if self.last_occurred is None or occurred > self.last_occurred:
            self.last_occurred = occurred
        if self.first_recorded is None or recorded < self.first_recorded:
            self.first_recorded = recorded
        if self.last_recorded is None or recorded > self.last_recorded:
            self.last_recorded = recorded


def summarise(
    facts: Iterable[tuple[int, Fact]], tick: Callable[[int], None] | None = None
) -> LedgerSummary:
    """Summarise ``(position, fact)`` pairs; ``tick`` is called with each position (progress)."""
    summary = LedgerSummary()
    for position, fact in facts:
        summary.add(fact)
        if tick is not None:
            tick(position)
    return summary
