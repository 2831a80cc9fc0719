"""The reports' Python API: ``Reports(config).run("inventory", options)``; the CLI wraps it.

Every report reads the live projection tables only (never the raw ledger), so it answers from
the last complete build even while a rebuild is running.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ledger.storage import StoreConfig
from projections.anomalies import anomalies
from projections.compare import compare
from projections.conversion import conversion
from projections.credit.attribution import attribution
from projections.credit.revenue import revenue
from projections.credit.sourced import sourced
from projections.credit.spend import spend
from projections.errors import ReportError
from projections.flow import flow
from projections.gc_pause import paused_gc
from projections.inventory import inventory
from projections.reading import Reader
from projections.report import Report
from projections.velocity import velocity
from projections.window import ReportOptions, Window

REPORTS: dict[str, Callable[[Reader, Window], Report]] = {
    "inventory": inventory,
    "flow": flow,
    "conversion": conversion,
    "velocity": velocity,
    "anomalies": anomalies,
    "attribution": attribution,
    "spend": spend,
    "sourced": sourced,
    "revenue": revenue,
}


class Reports:
    """Runs reports over the live projection of one database."""

    def __init__(self, config: StoreConfig, *, now: Callable[[], datetime] | None = None) -> None:
        """Bind to ``config``'s database; ``now`` fixes "today" (tests, reproducible runs)."""
        self.reader = Reader(config)
        self.now = now

    def close(self) -> None:
        """Release the database connections."""
        self.reader.close()

    def run(self, name: str, options: ReportOptions | None = None) -> Report:
        """The report called ``name`` (one of :data:`REPORTS`)."""
        try:
            build = REPORTS[name]
        except KeyError:
            raise ReportError(
                f"unknown report {name!r}; expected one of {', '.join(REPORTS)}"
            ) from None
        with paused_gc():  # a report's objects are freed by reference counting (gc_pause)
            self.reader.position()
            window = Window.resolve(options or ReportOptions(), self.now() if self.now else None)
            return build(self.reader, window)

    def compare(self, name: str, options: ReportOptions) -> Report:
        """The report as known at ``options.known_at`` next to as known now, and the difference."""
        if options.known_at is None:
            raise ReportError("comparing needs --known-at: the ledger time to compare with now")
        then = self.run(name, options)
        now = self.run(name, options.replace(known_at=None))
        return compare(then, now, f"as known at {options.known_at:%Y-%m-%d %H:%M:%S%z}")
