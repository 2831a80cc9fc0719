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

Builder = Callable[[Reader, Window], Report]
REPORTS: dict[str, Builder] = {
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
        """The report called ``name`` (one of :data:`REPORTS`).

        When the ledger holds facts the projection has not applied yet, a note says how many.
        """
        build = _builder(name)
        behind = self.reader.behind()
        return self._noted(self._build(build, options), behind)

    def _noted(self, report: Report, behind: int) -> Report:
        if behind:
            report.notes.append(
                f"the ledger holds {behind:,} facts recorded since the projection was last "
                "brought up to date, not counted here; run 'revledger project' to include them"
            )
        return report

    def _build(self, build: Builder, options: ReportOptions | None) -> Report:
        with paused_gc():  # a report's objects are freed by reference counting (gc_pause)
            window = Window.resolve(options or ReportOptions(), self.now() if self.now else None)
            return build(self.reader, window)

    def compare(self, name: str, options: ReportOptions) -> Report:
        """The report as known at ``options.known_at`` next to as known now, and the difference."""
        if options.known_at is None:
            raise ReportError("comparing needs --known-at: the ledger time to compare with now")
        build = _builder(name)
        behind = self.reader.behind()
        then = self._build(build, options)
        now = self._build(build, options.replace(known_at=None))
        label = f"as known at {options.known_at:%Y-%m-%d %H:%M:%S%z}"
        return self._noted(compare(then, now, label), behind)


def _builder(name: str) -> Builder:
    """The function building the report called ``name``; raises if there is none."""
    try:
        return REPORTS[name]
    except KeyError:
        raise ReportError(
            f"unknown report {name!r}; expected one of {', '.join(REPORTS)}"
        ) from None
