"""The definitions and audit Python API; ``definitions …`` and ``audit …`` are layers over it.

Each call reads the definition catalogue and, after catching the funnel projection up, the
projection as known now: ``reconcile`` and ``sla`` its hand-off and acceptance rows, the others
the effective facts of the leads they can concern (those with a fact of the types they look at
in the span, :meth:`LeadHistories.active`; for the definitions' history, the
``qualification_evaluated`` facts alone). Nothing here writes to the ledger.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ledger.application import Ledger
from projections.audit_history import disagreements, history
from projections.audit_lead import audit_lead
from projections.audit_reconcile import (
    DEFAULT_SLA_US,
    classified,
    listing,
    read_placements,
    read_summary,
    sla_at,
    summary,
)
from projections.audit_sla import counted_report
from projections.definitions import Catalogue
from projections.definitions_whatif import reading, whatif
from projections.errors import ReportError
from projections.periods import Calendar, to_us
from projections.qualification import TRIGGERS, LeadHistories, facts_read
from projections.report import Report


def span_of(start: date, end: date) -> tuple[datetime, datetime]:
    """The days ``start`` to ``end`` (inclusive) as a UTC ``[from, to)`` span."""
    if end < start:
        raise ReportError(f"--to {end} is before --from {start}")
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    last = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    return first, last


def _us(span: tuple[datetime, datetime]) -> tuple[int, int]:
    return to_us(span[0]), to_us(span[1])


class FunnelAudit:
    """Audit reports over one ledger."""

    def __init__(self, ledger: Ledger) -> None:
        """Load the catalogue and open the lead histories (catching the projection up)."""
        self.catalogue = Catalogue.load(ledger)
        self.histories = LeadHistories(ledger)
        approved = self.catalogue.approved()  # in the order they take effect
        # (takes effect, SLA) of each approved version, in microseconds
        self._slas = [
            (to_us(v.definition.effective_at), v.definition.sla // timedelta(microseconds=1))
            for v in approved
        ]

    def close(self) -> None:
        """Release the database connections."""
        self.histories.close()

    def sla_us(self, at: int) -> int:
        """The hand-off SLA of the definition in force at ``at`` (24 hours without one).

        In microseconds, as ``at`` is; the last version to take effect by ``at`` is in force.
        """
        return sla_at(at, self._slas, DEFAULT_SLA_US)

    def lead(self, lead_id: str) -> Report:
        """``audit lead``."""
        families = self.histories.families([lead_id]).get(lead_id, [])
        return audit_lead(lead_id, families, self.catalogue)

    def reconcile(self, start: date, end: date, *, per_lead: bool = False) -> Report:
        """``audit reconcile``."""
        span = span_of(start, end)
        queries = classified(self.histories.tables, _us(span), self._slas, DEFAULT_SLA_US)
        with self.histories.engine.connect() as conn:
            if per_lead:
                return listing(read_placements(conn, queries), span)
            return summary(read_summary(conn, queries), span)

    def sla(self, calendar: Calendar, start: date, end: date) -> Report:
        """``audit sla``."""
        span = span_of(start, end)
        with self.histories.engine.connect() as conn:
            slas = (self._slas, DEFAULT_SLA_US)
            return counted_report(conn, self.histories.tables, calendar, span, slas)

    def history(self, calendar: Calendar, now: datetime | None = None) -> Report:
        """``audit definitions``."""
        qualified = self.histories.of_type("qualification_evaluated")
        return history(qualified, self.catalogue, calendar, now or datetime.now(UTC))

    def disagreements(self, start: date, end: date, *, per_lead: bool = False) -> Report:
        """``audit disagreements``."""
        span = span_of(start, end)
        # the rules of the versions in force in the span judge the stage changes into their
        # stages: only the leads with such a change are read, with the facts the rules read
        first, last = span
        rules = [
            (transition.to, transition.rule)
            for version, since, until in self.catalogue.spans()
            if since < last and (until is None or until > first)
            for transition in version.definition.transitions
        ]
        reading = {"stage_changed", *facts_read(rule for _, rule in rules)}
        leads = self.histories.entering({stage for stage, _ in rules}, span, reading)
        return disagreements(leads, self.catalogue, span, per_lead=per_lead)

    def whatif(self, version: str, start: date, end: date, *, per_lead: bool = False) -> Report:
        """``definitions whatif``."""
        span = span_of(start, end)
        # the leads with a trigger in the span, with the trigger types the rules read; a lead
        # those cannot settle (a version taking effect between two of them) is read again whole
        read = reading(self.catalogue, version, span[1])
        leads = self.histories.active(TRIGGERS, span, reading=read)
        reread = None if read >= TRIGGERS else self.histories.some
        return whatif(leads, self.catalogue, version, span, per_lead=per_lead, reread=reread)
