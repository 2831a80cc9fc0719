"""Velocity against a plain-Python reference over the projection's own stays, on both databases.

The report ranks durations outside SQL and sweeps the open stays through the period ends
(projections/velocity.py); the reference here takes every period on its own, the slow way:
every stay completed in it, every stay open at its end, sorted. A funnel of a few hundred leads
puts dozens of stays in most groups, so the p90 rank differs from the last and the sweep both
adds and removes stays between period ends.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.application import open_ledger
from projections.api import Reports
from projections.periods import FOREVER, Calendar, zone
from projections.reading import Reader
from projections.window import NONE_GROUP, ReportOptions, Window
from tests.factories import project_funnel

DAY_US = 86_400_000_000


def nearest_rank(values: list[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[-(-len(ordered) * int(p * 10) // 10) - 1]


def summary(durations: list[int]) -> list[Any]:
    return [
        len(durations),
        statistics.fmean(durations) / DAY_US,
        nearest_rank(durations, 0.5) / DAY_US,
        nearest_rank(durations, 0.9) / DAY_US,
    ]


def current_stays(url: str, by: str | None) -> list[tuple[str, str, int, int]]:
    """(group, stage, entered, exited) of every current stay, grouped as ``--by`` groups."""
    reader = Reader(open_ledger(url, create=False).config)
    stay, lead = reader.tables["stay"], reader.tables["lead"]
    with reader.engine.connect() as conn:
        leads = {
            row.lead_id: row
            for row in conn.execute(sa.select(lead).where(lead.c.known_to == FOREVER))
        }
        rows = conn.execute(
            sa.select(stay.c.lead_id, stay.c.stage, stay.c.entered_us, stay.c.exited_us).where(
                stay.c.known_to == FOREVER
            )
        ).all()
    reader.close()
    out = []
    for lead_id, stage, entered, exited in rows:
        if by is None:
            out.append(("", stage, entered, exited))
        elif lead_id in leads:
            value = getattr(leads[lead_id], by)
            out.append((NONE_GROUP if value is None else value, stage, entered, exited))
    return out


def reference(
    stays: list[tuple[str, str, int, int]], window: Window
) -> dict[tuple[str, str, str, str], list[Any]]:
    """Time in stage and open age per (period, group, measure, stage), period by period."""
    samples: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
    for period in window.periods:
        for grp, stage, entered, exited in stays:
            if period.start <= exited < period.end:
                samples[period.label, grp, "time_in_stage", stage].append(exited - entered)
            if entered < period.end <= exited:
                samples[period.label, grp, "open_age", stage].append(period.end - entered)
    return {key: summary(values) for key, values in samples.items()}


@pytest.mark.parametrize(
    ("kind", "tz", "by"),
    [("month", "UTC", None), ("week", "America/New_York", "segment"), ("quarter", "UTC", "owner")],
)
def test_time_in_stage_and_open_age_match_a_period_by_period_reference(
    db_url: str, kind: str, tz: str, by: str | None
) -> None:
    """Count, mean, nearest-rank median and p90 of every group, on either database."""
    project_funnel(db_url, 400, seed=5, months=12)
    start = date(2025, 5, 1) if kind == "week" else date(2024, 11, 1)
    options = ReportOptions(
        calendar=Calendar(kind, zone(tz)), start=start, as_of=date(2025, 9, 30), by=by
    )
    api = Reports(open_ledger(db_url, create=False).config)
    rows = api.run("velocity", options).rows
    api.close()
    got = {}
    for row in rows:
        label, grp, (measure, stage, *numbers) = row[0], row[1] if by else "", row[-6:]
        if measure in {"time_in_stage", "open_age"}:
            got[label, grp, measure, stage] = numbers
    want = reference(current_stays(db_url, by), Window.resolve(options))
    assert got.keys() == want.keys()
    assert sum(1 for key in got if key[2] == "open_age" and got[key][0] > 20) >= 5
    for key, (n, mean, median, p90) in want.items():
        assert got[key][0] == n, key
        assert got[key][1] == pytest.approx(mean, rel=1e-12), key
        assert got[key][2:] == [median, p90], key


@pytest.mark.parametrize("stage", ["inquiry", "mql", "sal", "sql", "sqo", "won"])
def test_a_stage_filter_keeps_the_lag_rows_of_that_stage(db_url: str, stage: str) -> None:
    """``--stage X`` keeps the unfiltered report's lag rows from or to X (and won's cycle).

    The filtered lag query reads fewer leads (those whose window stays reach X's lag targets,
    skips included), so a lead whose first reach came by a skip must still count.
    """
    project_funnel(db_url, 400, seed=5, months=12)
    options = ReportOptions(start=date(2024, 11, 1), as_of=date(2025, 9, 30))
    api = Reports(open_ledger(db_url, create=False).config)
    everything = api.run("velocity", options).rows
    filtered = api.run("velocity", options.replace(stage=stage)).rows
    api.close()

    def lags(rows: list[list[Any]]) -> list[list[Any]]:
        return [row for row in rows if row[1] in {"lag", "sales_cycle"}]

    def involves(row: list[Any]) -> bool:
        return stage in str(row[2]).split("->") or (row[1] == "sales_cycle" and stage == "won")

    assert lags(filtered) == [row for row in lags(everything) if involves(row)]
    assert lags(filtered)
