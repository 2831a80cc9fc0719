"""Property tests (hypothesis, SQLite) of the credit tables: rebuild equals incremental catch-up.

Generated histories hold campaigns with spend, leads with touches, opportunities that open and
close, contract movements, and retractions and amendments of touches and opportunity amounts;
they arrive in any order and batch size.
"""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import open_ledger, parse_fact
from projections.api import Reports
from projections.credit.options import CreditOptions, SourcedRule
from projections.periods import Calendar, zone
from projections.runner import Projection
from projections.window import ReportOptions

START = datetime(2025, 1, 1, tzinfo=UTC)
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CREDIT = ("touch", "contact", "deal", "close", "link", "campaign", "spend", "arr")
CREDIT += ("roll_deal", "deal_source", "roll_credit", "deal_credit")  # kept by catch-ups too
CURRENCIES = ("USD", "EUR")
CHANNELS = ("web", "outbound", "event")
OPTIONS = ReportOptions(calendar=Calendar("month"), start=date(2025, 1, 1), as_of=date(2025, 9, 30))


def at(draw: Any, low: int = 0, high: int = 200) -> datetime:
    return START + timedelta(days=draw(st.integers(low, high)))


def amounts() -> st.SearchStrategy[str]:
    """Amounts written with 0 to 5 decimal places (finer than the roll-ups' ten-thousandths)."""
    return st.integers(0, 5).flatmap(
        lambda places: st.builds(
            lambda whole, fraction: f"{whole}.{fraction:0{places}d}" if places else str(whole),
            st.integers(0, 10**6),
            st.integers(0, 10**places - 1),
        )
    )


@st.composite
def histories(draw: Any) -> list[dict[str, Any]]:  # noqa: C901, PLR0912 - one strategy, read top down
    """Campaigns, leads, touches, deals, contracts, then corrections of touches and deals."""
    records: list[dict[str, Any]] = []
    for c in range(2):
        records.append(
            {
                "type": "campaign_created",
                "campaign_id": f"C{c}",
                "name": f"n{c}",
                "channel": ["web", "outbound"][c],
                "occurred_at": START,
            }
        )
        if draw(st.booleans()):
            first = date(2025, 1, 1) + timedelta(days=draw(st.integers(0, 100)))
            records.append(
                {
                    "type": "campaign_spend_recorded",
                    "campaign_id": f"C{c}",
                    "amount": f"{draw(st.integers(1, 10**6))}.00",
                    "currency": "USD",
                    "period_start": first.isoformat(),
                    "period_end": (first + timedelta(days=draw(st.integers(0, 60)))).isoformat(),
                    "occurred_at": at(draw, 100, 150),
                }
            )
    leads = draw(st.integers(1, 3))
    for lead in range(leads):
        captured = {"type": "lead_captured", "lead_id": f"L{lead}", "occurred_at": at(draw)}
        captured["account_id"] = f"A{lead % 2}"
        if draw(st.booleans()):
            captured["lead_source"] = draw(st.sampled_from(CHANNELS))
        records.append(captured)
        records.extend(
            {
                "type": "touch_recorded",
                "lead_id": f"L{lead}",
                "touch_type": "v",
                "channel": draw(st.sampled_from(CHANNELS)),
                "campaign_id": f"C{draw(st.integers(0, 1))}",
                "occurred_at": at(draw),
            }
            for _ in range(draw(st.integers(0, 4)))
        )
        if draw(st.integers(0, 3)) == 0:  # the lead moves to another account
            records.append(
                {
                    "type": "lead_updated",
                    "lead_id": f"L{lead}",
                    "attributes": {"account_id": f"A{draw(st.integers(0, 2))}"},
                    "occurred_at": at(draw),
                }
            )
    for opp in range(draw(st.integers(0, 2))):
        records.append(
            {
                "type": "opportunity_opened",
                "opportunity_id": f"O{opp}",
                "account_id": f"A{opp}",
                "amount": f"{draw(st.integers(0, 10**5))}.50",
                "currency": "USD",
                "opportunity_type": draw(st.sampled_from(["new", "new", "expansion", "renewal"])),
                "lead_ids": draw(
                    st.lists(st.sampled_from([f"L{n}" for n in range(3)]), max_size=2)
                ),
                "stage": "s",
                "occurred_at": at(draw, 50, 120),
            }
        )
        when = at(draw, 121, 200)
        for kind in draw(st.lists(st.sampled_from(["won", "lost", "reopened"]), max_size=3)):
            when += timedelta(hours=draw(st.integers(0, 40)))  # some closes share a day
            close = {"type": f"opportunity_{kind}", "opportunity_id": f"O{opp}", "reason": "r"}
            if kind == "won":
                close = {"amount": draw(amounts()), "currency": draw(st.sampled_from(CURRENCIES))}
                close |= {"type": "opportunity_won", "opportunity_id": f"O{opp}"}
            records.append({**close, "occurred_at": when})
    for move in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["started", "expanded", "contracted", "churned"]))
        records.append(
            {
                "type": f"contract_{kind}",
                "account_id": "A0",
                "contract_id": "K",
                "arr" if kind == "started" else "amount": draw(amounts()),
                "currency": draw(st.sampled_from(CURRENCIES)),
                "occurred_at": at(draw) + timedelta(hours=move),
            }
        )
    for n, record in enumerate(records):
        record.update(
            source="gen",
            source_id=f"f{n}",
            actor="gen",
            recorded_at=START + timedelta(days=draw(st.integers(0, 300))),
        )
    targets = [r for r in records if r["type"] in {"touch_recorded", "opportunity_opened"}]
    fixes = []
    for target in (
        draw(st.lists(st.sampled_from(targets), unique_by=id, max_size=3)) if targets else []
    ):
        base = {
            "source": "fix",
            "source_id": f"x{len(fixes)}",
            "actor": "ops",
            "occurred_at": START + timedelta(days=250),
            "target_source": "gen",
            "target_source_id": target["source_id"],
            "reason": "test",
            "recorded_at": target["recorded_at"] + timedelta(days=draw(st.integers(0, 30))),
        }
        if target["type"] == "touch_recorded" and draw(st.booleans()):
            fixes.append({"type": "fact_retracted", **base})
        elif target["type"] == "touch_recorded":
            fixes.append({"type": "fact_amended", "changes": {"campaign_id": "C9"}, **base})
        else:
            fixes.append({"type": "fact_amended", "changes": {"amount": "7.00"}, **base})
    return records + fixes


def as_fact(record: dict[str, Any]) -> Any:
    return parse_fact(
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}
    )


def record_and_project(url: str, records: list[dict[str, Any]], step: int, *, page: int) -> None:
    ledger = open_ledger(url)
    for lo in range(0, max(len(records), 1), step):
        ledger.record([as_fact(r) for r in records[lo : lo + step]])
        projection = Projection(ledger, page=page)
        projection.catch_up()
        projection.close()
    ledger.close()


def rebuild(url: str) -> None:
    ledger = open_ledger(url)
    projection = Projection(ledger)
    projection.rebuild()
    projection.close()
    ledger.close()


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {
            n: sorted(map(tuple, conn.exec_driver_sql(f"SELECT * FROM rl_{n}")), key=repr)  # noqa: S608
            for n in CREDIT
        }
    engine.dispose()
    return out


def reports(url: str) -> dict[str, Any]:
    api = Reports(open_ledger(url).config)
    out = {
        f"{name}-{metric}": api.run(name, OPTIONS.replace(credit=CreditOptions(metric=metric))).rows
        for name in ("attribution", "spend", "sourced", "revenue")
        for metric in ("pipeline", "revenue")
    }
    api.close()
    return out


def arrival(records: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """A shuffled arrival order in which every correction still comes after its target."""
    roots = [r for r in records if "target_source_id" not in r]
    random.Random(seed).shuffle(roots)  # noqa: S311 - test data, not secrets
    return roots + [r for r in records if "target_source_id" in r]


@PROPERTY
@given(histories(), st.integers(1, 5), st.integers(0, 2**16))
def test_credit_tables_rebuild_equals_incremental_in_any_arrival_order(records, step, seed):
    """Batches and arrival order never change the credit tables or reports; rebuild agrees."""
    with tempfile.TemporaryDirectory() as tmp:
        first, second = f"sqlite:///{Path(tmp, 'a.db')}", f"sqlite:///{Path(tmp, 'b.db')}"
        record_and_project(first, records, len(records) or 1, page=1000)
        record_and_project(second, arrival(records, seed), step, page=2)
        incremental = dump(second)
        assert incremental == dump(first)
        assert reports(second) == reports(first)
        rebuild(second)
        assert dump(second) == incremental


@PROPERTY
@given(histories())
def test_attributed_pipeline_equals_the_pipeline_opened(records):
    """Per period and currency, the credit of all campaigns adds up to the pipeline opened."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp, 'a.db')}"
        record_and_project(url, records, len(records) or 1, page=1000)
        api = Reports(open_ledger(url).config)
        credited = api.run("attribution", OPTIONS).records()
        opened = api.run("sourced", OPTIONS).records()
        api.close()
    per_period: dict[str, Any] = {}
    for row in credited:
        per_period[row["period"]] = per_period.get(row["period"], 0) + row["pipeline"]
    expected: dict[str, Any] = {}
    for row in opened:
        if row["pipeline"]:
            expected[row["period"]] = expected.get(row["period"], 0) + row["pipeline"]
    assert per_period == expected


@PROPERTY
@given(
    histories(),
    st.integers(110, 215),
    st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"]),
    st.sampled_from(["day", "week", "month"]),
    st.sampled_from(
        [
            CreditOptions(),
            CreditOptions(
                opportunity_types=("new", "expansion"), sourced=SourcedRule(frozenset({"web"}))
            ),
        ]
    ),
)
def test_deal_reports_from_the_rollup_equal_the_tables(records, days, tz, kind, credit):
    """The roll-ups answer revenue, sourced, attribution and spend exactly as the tables do.

    Closes come in runs (won, lost, reopened, some on one day), amounts have 0 to 5 decimal
    places, and the as-of cap falls anywhere among them, in timezones whose midnights are not
    UTC's, so whole days, partial days and closes whose next close straddles the cap all occur.
    Leads move between accounts and deals name leads, in batches of three facts, so the kept
    deciding channels change with leads that are not the deal's.
    """
    options = ReportOptions(
        calendar=Calendar(kind, zone(tz)),
        start=date(2025, 4, 1),
        as_of=START.date() + timedelta(days=days),
        credit=credit,
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp, 'a.db')}"
        record_and_project(url, records, 3, page=2)
        api = Reports(open_ledger(url).config)
        runs = [("revenue", credit), ("sourced", credit)]
        runs += [
            ("attribution", credit.replace(metric=metric, by=by))
            for metric in ("pipeline", "revenue", "deals")
            for by in ("campaign", "channel")
        ]
        runs += [("spend", credit.replace(by=by)) for by in ("campaign", "channel")]
        for name, chosen in runs:
            fast = api.run(name, options.replace(credit=chosen))
            api.reader._rollups = False  # noqa: SLF001 (hide the roll-ups: read the tables)
            slow = api.run(name, options.replace(credit=chosen))
            api.reader._rollups = None  # noqa: SLF001
            assert repr(fast.notes) == repr(slow.notes), name
            assert [list(map(repr, row)) for row in fast.rows] == [
                list(map(repr, row)) for row in slow.rows
            ], name
        api.close()
