"""The definitions and audit Python API; ``definitions …`` and ``audit …`` are layers over it.

Each call reads the definition catalogue and the leads' effective facts (as known now) from the
ledger's database, after catching the funnel projection up; nothing here writes to the ledger.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ledger.application import Ledger
from projections.audit_history import disagreements, history
from projections.audit_lead import audit_lead
from projections.audit_reconcile import DEFAULT_SLA, reconcile
from projections.audit_sla import sla_report
from projections.definitions import Catalogue
from projections.definitions_whatif import whatif
from projections.errors import ReportError
from projections.periods import Calendar
from projections.qualification import LeadHistories
from projections.report import Report


def span_of(start: date, end: date) -> tuple[datetime, datetime]:
    """The days ``start`` to ``end`` (inclusive) as a UTC ``[from, to)`` span."""
    if end < start:
        raise ReportError(f"--to {end} is before --from {start}")
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    last = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    return first, last


class FunnelAudit:
    """Audit reports over one ledger."""

    def __init__(self, ledger: Ledger) -> None:
        """Load the catalogue and open the lead histories (catching the projection up)."""
        self.catalogue = Catalogue.load(ledger)
        self.histories = LeadHistories(ledger)

    def close(self) -> None:
        """Release the database connections."""
        self.histories.close()

    def sla_of(self, at: datetime) -> timedelta:
        """The hand-off SLA of the definition in force at ``at`` (24 hours without one)."""
        version = self.catalogue.in_force(at)
        return version.definition.sla if version else DEFAULT_SLA

    def lead(self, lead_id: str) -> Report:
        """``audit lead``."""
        families = self.histories.families([lead_id]).get(lead_id, [])
        return audit_lead(lead_id, families, self.catalogue)

    def reconcile(self, start: date, end: date, *, per_lead: bool = False) -> Report:
        """``audit reconcile``."""
        return reconcile(
            self.histories.every(), span_of(start, end), self.sla_of, per_lead=per_lead
        )

    def sla(self, calendar: Calendar, start: date, end: date) -> Report:
        """``audit sla``."""
        return sla_report(self.histories.every(), calendar, span_of(start, end), self.sla_of)

    def history(self, calendar: Calendar, now: datetime | None = None) -> Report:
        """``audit definitions``."""
        return history(self.histories.every(), self.catalogue, calendar, now or datetime.now(UTC))

    def disagreements(self, start: date, end: date, *, per_lead: bool = False) -> Report:
        """``audit disagreements``."""
        span = span_of(start, end)
        return disagreements(self.histories.every(), self.catalogue, span, per_lead=per_lead)

    def whatif(self, version: str, start: date, end: date, *, per_lead: bool = False) -> Report:
        """``definitions whatif``."""
        span = span_of(start, end)
        return whatif(self.histories.every(), self.catalogue, version, span, per_lead=per_lead)
