"""The leadership page repeats the funnel reports' numbers; it never computes its own."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.synthetic import generate
from ledger.application import open_ledger
from ledger.codec import parse_fact
from projections.api import Reports
from projections.leadership import leadership
from projections.runner import Projection
from projections.window import ReportOptions

AS_OF = date(2025, 10, 31)


@pytest.fixture
def reports(db_url: str):
    """Reports over a projected synthetic funnel of 400 leads (Nov 2024 – Oct 2025)."""
    ledger = open_ledger(db_url)
    ledger.record([parse_fact(r) for r in generate(400, seed=3, months=12)])
    projection = Projection(ledger)
    projection.catch_up()
    projection.close()
    reports = Reports(ledger.config)
    yield reports
    reports.close()
    ledger.close()


def test_inventory_pivot_matches_the_inventory_report(reports: Reports) -> None:
    """Each month-end stage count on the page equals the inventory report's count."""
    page = leadership(reports, AS_OF)[0]
    source = reports.run("inventory", ReportOptions(as_of=AS_OF, start=date(2025, 5, 1)))
    expected = {(r["period"], r["stage"]): r["count"] for r in source.records()
                if r["kind"] == "lead"}
    shown = {(row["month end"], stage): row[stage] for row in page.records()
             for stage in ("inquiry", "mql", "sal", "sql", "sqo", "won", "lost")}
    assert len(page.rows) == 6
    assert all(shown[key] == expected.get(key, 0) for key in shown)
    assert sum(shown.values()) > 0


def test_flow_summary_keeps_the_inventory_identity(reports: Reports) -> None:
    """Start + inflow − outflow = end for every stage on the page."""
    flow = leadership(reports, AS_OF)[1]
    assert flow.rows
    for row in flow.records():
        assert row["start"] + row["inflow"] - row["outflow"] == row["end"]


def test_conversion_rates_are_reached_over_entered(reports: Reports) -> None:
    """Each next-step rate is reached ÷ entered, and never above one."""
    conversion = leadership(reports, AS_OF)[2]
    assert conversion.rows
    for row in conversion.records():
        assert row["reached"] <= row["entered"]
        if row["entered"]:
            assert row["rate"] == pytest.approx(row["reached"] / row["entered"])


def test_velocity_uses_the_last_complete_quarter(reports: Reports) -> None:
    """As of 31 October the quarter is not over, so velocity covers July–September."""
    velocity = leadership(reports, AS_OF)[3]
    assert "Jul–Sep 2025" in velocity.title


def test_revenue_section_adds_bookings_by_type(reports: Reports) -> None:
    """Bookings on the page are the revenue report's new + expansion + renewal bookings."""
    page = leadership(reports, AS_OF)[4]
    assert page.rows
    for row in page.records():
        assert row["bookings"] >= 0
        if row["win rate"] is not None:
            assert 0 <= row["win rate"] <= 1


def test_spend_section_ratio_is_pipeline_over_spend(reports: Reports) -> None:
    """Each channel's ratio is its credited pipeline divided by its spend."""
    page = leadership(reports, AS_OF)[5]
    assert page.rows
    for row in page.records():
        if row["spend"]:
            assert abs(row["pipeline/spend"] - row["pipeline"] / row["spend"]) < 0.01
