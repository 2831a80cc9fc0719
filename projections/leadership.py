"""The leadership report: the one page the CMO and CRO read together.

It composes the funnel and credit reports (docs/metrics.md, docs/credit.md) into a few tables
that read well in a terminal: stage inventory at each month end with open pipeline value, last
month's flow per stage, next-step cohort conversion, median time in stage, revenue per quarter,
and pipeline-to-spend per channel. Every number is the same one the
individual reports give; nothing here computes a metric of its own.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from projections.api import Reports
from projections.periods import Calendar
from projections.report import Report
from projections.stages import MAIN as PIPELINE
from projections.stages import STAGES as ORDER
from projections.window import ReportOptions

MONTHS = 6


def _months_back(as_of: date, months: int) -> date:
    """The first day of the month ``months - 1`` months before ``as_of``'s month."""
    first = as_of.replace(day=1)
    for _ in range(months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def inventory_pivot(reports: Reports, options: ReportOptions, start: date) -> Report:
    """Leads per stage at each month end, with open pipeline value (all currencies apart)."""
    source = reports.run("inventory", options.replace(start=start))
    counts: dict[str, dict[str, Any]] = defaultdict(dict)
    values: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in source.records():
        period = row["period"]
        if row["kind"] == "lead":
            counts[period][row["stage"]] = row["count"]
        elif row["value"] is not None:
            values[period][row["currency"]] += Decimal(row["value"])
    currencies = sorted({c for per in values.values() for c in per})
    columns = ["month end", *ORDER, *(f"open pipeline {c}" for c in currencies)]
    report = Report(title="Stage inventory at month end (leads) and open pipeline", columns=columns)
    for period in sorted(counts):
        cells: list[Any] = [period, *(counts[period].get(stage, 0) for stage in ORDER)]
        cells.extend(values[period].get(c, Decimal(0)) for c in currencies)
        report.rows.append(cells)
    return report


def flow_summary(reports: Reports, options: ReportOptions, month: date) -> Report:
    """One month's movement per pipeline stage: start + inflow − outflow = end."""
    source = reports.run("flow", options.replace(start=month, end=_month_end(month)))
    report = Report(
        title=f"Flow in {month:%B %Y}: how leads moved between stages",
        columns=[
            "stage",
            "start",
            "inflow",
            "outflow",
            "end",
            "skips in",
            "backward",
            "re-entries",
        ],
    )
    for row in source.records():
        report.rows.append(
            [
                row["stage"],
                row["start"],
                row["inflow"],
                row["outflow"],
                row["end"],
                row["skips_in"],
                row["backward_in"],
                row["reentries"],
            ]
        )
    return report


def conversion_summary(reports: Reports, options: ReportOptions, start: date, end: date) -> Report:
    """Of the leads entering each stage in the window, the share that reached the next one."""
    source = reports.run(
        "conversion",
        options.replace(start=start, end=end, basis="cohort", calendar=Calendar("quarter")),
    )
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in source.records():
        if row["step"] == "next":
            key = (row["from_stage"], row["to_stage"])
            totals[key][0] += row["cohort"]
            totals[key][1] += row["reached_ever"]
            totals[key][2] += row["via_skip"]
    report = Report(
        title=f"Conversion of the leads that entered a stage {start:%b %Y}–{end:%b %Y} "
        "(cohort: reached the next stage, ever)",
        columns=["from", "to", "entered", "reached", "rate", "via skip"],
    )
    for (frm, to), (entered, reached, skips) in totals.items():
        rate = reached / entered if entered else None
        report.rows.append([frm, to, entered, reached, rate, skips])
    return report


def velocity_summary(reports: Reports, options: ReportOptions, as_of: date) -> Report:
    """Median and p90 days in each pipeline stage, and the sales cycle, in the last full quarter."""
    start, end = last_full_quarter(as_of)
    source = reports.run(
        "velocity", options.replace(start=start, end=end, calendar=Calendar("quarter"))
    )
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for row in source.records():
        if row["measure"] in {"time_in_stage", "sales_cycle"} and (
            row["stage"] in PIPELINE or row["measure"] == "sales_cycle"
        ):
            rows[(row["measure"], row["stage"])] = row
    report = Report(
        title=f"Velocity, {start:%b}–{end:%b %Y} (completed stays, days)",
        columns=["measure", "stage", "count", "median", "p90"],
    )
    for (measure, stage), row in sorted(rows.items(), key=lambda kv: _rank(kv[0])):
        report.rows.append(
            [measure.replace("_", " "), stage, row["count"], row["median_days"], row["p90_days"]]
        )
    return report


def last_full_quarter(as_of: date) -> tuple[date, date]:
    """The first and last day of the last calendar quarter that is over on ``as_of``."""
    quarter = Calendar("quarter")
    end = as_of
    if quarter.first_day(as_of + timedelta(days=1)) == quarter.first_day(as_of):
        end = quarter.first_day(as_of) - timedelta(days=1)
    return quarter.first_day(end), end


def revenue_summary(reports: Reports, options: ReportOptions, as_of: date) -> Report:
    """Bookings, net new ARR, win rate, deal size, cycle and pipeline velocity per quarter."""
    start = _months_back(as_of, 12)
    source = reports.run(
        "revenue", options.replace(start=start, end=as_of, calendar=Calendar("quarter"))
    )
    columns = [
        "quarter",
        "currency",
        "bookings",
        "net new ARR",
        "won",
        "win rate",
        "avg deal size",
        "cycle days",
        "pipeline velocity/day",
    ]
    report = Report(
        title="Revenue per quarter (new business: win rate, size, cycle)", columns=columns
    )
    for row in source.records():
        bookings = row["bookings_new"] + row["bookings_expansion"] + row["bookings_renewal"]
        report.rows.append(
            [
                row["period"],
                row["currency"],
                bookings,
                row["net_new_arr"],
                row["won"],
                row["win_rate"],
                row["avg_deal_size"],
                row["cycle_days"],
                row["pipeline_velocity"],
            ]
        )
    report.notes.append("net new ARR = new + expansion − contraction − churn (docs/credit.md)")
    return report


def spend_summary(reports: Reports, options: ReportOptions, as_of: date) -> Report:
    """Pipeline-to-spend per channel in the last full quarter, against the 10× target."""
    start, end = last_full_quarter(as_of)
    source = reports.run(
        "spend",
        options.replace(
            start=start,
            end=end,
            calendar=Calendar("quarter"),
            credit=options.credit.replace(by="channel"),
        ),
    )
    report = Report(
        title=f"Marketing programs {start:%b}–{end:%b %Y}: pipeline-to-spend by channel "
        f"({options.credit.model.name} attribution)",
        columns=["channel", "currency", "spend", "pipeline", "pipeline/spend", "target"],
    )
    for row in source.records():
        report.rows.append(
            [
                row["channel"],
                row["currency"],
                row["spend"],
                row["pipeline"],
                row["pipeline_to_spend"],
                row["target"],
            ]
        )
    return report


def _rank(key: tuple[str, str]) -> tuple[int, int]:
    measure, stage = key
    return (measure == "sales_cycle", ORDER.index(stage) if stage in ORDER else len(ORDER))


def _month_end(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def leadership(reports: Reports, as_of: date, options: ReportOptions | None = None) -> list[Report]:
    """The leadership page as of a business date: funnel, velocity, revenue, program credit."""
    options = (options or ReportOptions()).replace(as_of=as_of)
    last_full_month = _months_back(as_of, 2) if as_of != _month_end(as_of) else as_of.replace(day=1)
    start = _months_back(as_of, MONTHS)
    return [
        inventory_pivot(reports, options, start),
        flow_summary(reports, options, last_full_month),
        conversion_summary(
            reports, options, _months_back(as_of, 9), _month_end(_months_back(as_of, 4))
        ),
        velocity_summary(reports, options, as_of),
        revenue_summary(reports, options, as_of),
        spend_summary(reports, options, as_of),
    ]
