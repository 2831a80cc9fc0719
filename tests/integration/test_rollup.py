"""The per-day roll-ups answer the balance reports exactly as the bitemporal tables do.

Every report that reads the roll-ups (inventory, flow with and without the matrix, period
conversion, open pipeline, velocity, revenue) is run twice over the same projection: once
through the roll-ups, once with them hidden so that the stay, opportunity and deal tables are
scanned, under reporting timezones whose midnights are not UTC midnights, every ``--by`` split,
``--stage`` filters and every calendar. Incremental upkeep is checked against a rebuild in
tests/integration/test_projections_properties.py, which compares every table.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from adapters.synthetic import generate
from ledger.application import open_ledger
from ledger.codec import parse_fact
from projections import rollup
from projections.api import Reports
from projections.periods import Calendar, zone
from projections.reading import Reader
from projections.runner import Projection
from projections.schema import tables
from projections.window import ReportOptions
from tests.factories import project_funnel
from tests.integration.test_projections_properties import (
    OPTIONS,
    PROPERTY,
    histories,
    record_all,
)

ROLLED_UP = (("inventory", {}), ("flow", {}), ("flow", {"matrix": True}), ("velocity", {}),
             ("conversion", {"basis": "period"}), ("conversion", {"basis": "cohort"}),
             ("revenue", {}))
ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham")


def both_ways(url: str, options: ReportOptions) -> Iterator[tuple[Any, Any]]:
    """Each rolled-up report through the roll-ups and through the bitemporal tables."""
    api = Reports(open_ledger(url).config)
    try:
        for name, extra in ROLLED_UP:
            asked = options.replace(**extra)
            fast = api.run(name, asked).rows
            api.reader._rollups = False  # noqa: SLF001 (hide the roll-ups: scan the stays)
            slow = api.run(name, asked).rows
            api.reader._rollups = None  # noqa: SLF001
            yield fast, slow
    finally:
        api.close()


def test_reports_use_the_rollups_when_they_exist(sqlite_url: str) -> None:
    """A projection built today has the roll-up tables, and reports read them."""
    ledger = open_ledger(sqlite_url)
    ledger.record([parse_fact(r) for r in generate(60, seed=5, months=6)])
    projection = Projection(ledger)
    projection.catch_up()
    projection.close()
    reader = Reader(ledger.config)
    assert reader.has_rollups()
    with reader.engine.connect() as conn:
        live = tables(ledger.config.schema)
        assert conn.execute(sa.select(sa.func.count()).select_from(live["roll_stay"])).scalar()
        assert conn.execute(sa.select(sa.func.count()).select_from(live["roll_opp"])).scalar()
    reader.close()
    ledger.close()


def test_the_open_stay_rollup_counts_every_stay_that_never_ended(db_url: str) -> None:
    """``rl_roll_open`` holds, per split, day of entry and stage, the never-ended stays.

    After an incremental catch-up in small pages that moves leads on (their earlier stays end),
    the table equals the count and entry offsets computed here from the stay and lead tables.
    """
    project_funnel(db_url, 120, seed=9, months=8, page=200)
    config = open_ledger(db_url, create=False).config
    live = tables(config.schema)
    reader = Reader(config)
    with reader.engine.connect() as conn:
        current = rollup.FOREVER
        leads = {r.lead_id: r._mapping for r in conn.execute(  # noqa: SLF001 - SQLAlchemy's public Row API
            sa.select(live["lead"]).where(live["lead"].c.known_to == current))}
        stays = conn.execute(sa.select(live["stay"]).where(
            live["stay"].c.known_to == current)).mappings().all()
        stored = {(r.dim, r.value, r.day, r.stage): (r.n, r.since)
                  for r in conn.execute(sa.select(live["roll_open"]))}
    reader.close()
    want: dict[tuple[str, str, int, str], list[int]] = {}
    for stay in stays:
        if stay["exited_us"] < current:
            continue
        day = stay["entered_us"] // rollup.DAY_US
        lead = leads.get(stay["lead_id"])
        for dim in rollup.DIMS:
            if dim and lead is None:
                continue
            value = "" if not dim else (rollup.NONE_GROUP if lead[dim] is None else lead[dim])
            sums = want.setdefault((dim, value, day, stay["stage"]), [0, 0])
            sums[0] += 1
            sums[1] += stay["entered_us"] - day * rollup.DAY_US
    assert {key: tuple(sums) for key, sums in want.items()} == stored
    assert sum(n for (dim, *_), (n, _) in stored.items() if not dim) == 120  # one per lead
    assert len(stays) > 2 * 120  # most leads moved on: their earlier stays ended


def test_the_ended_stay_rollup_counts_every_bound_a_stay_spans(db_url: str) -> None:
    """``rl_roll_ended`` holds, per bound, stage and day of entry, the ended stays open then.

    A bound is a UTC day starting an ISO week or a month; a stay is open at its midnight when
    entered before it and exited at or after it. After an incremental catch-up in small pages
    that moves leads on, the table equals what is counted here, day by day, from the stays.
    """
    project_funnel(db_url, 120, seed=9, months=8, page=200)
    config = open_ledger(db_url, create=False).config
    live = tables(config.schema)
    reader = Reader(config)
    with reader.engine.connect() as conn:
        stays = conn.execute(sa.select(live["stay"]).where(
            live["stay"].c.known_to == rollup.FOREVER)).mappings().all()
        stored = {(r.bound, r.stage, r.day): (r.n, r.since)
                  for r in conn.execute(sa.select(live["roll_ended"]))}
    reader.close()
    want: dict[tuple[int, str, int], list[int]] = {}
    epoch = date(1970, 1, 1)
    for stay in stays:
        entered, exited = stay["entered_us"], stay["exited_us"]
        if exited >= rollup.FOREVER:
            continue
        day = entered // rollup.DAY_US
        midnight = day + 1
        while midnight * rollup.DAY_US <= exited:
            calendar_day = epoch + timedelta(days=midnight)
            if calendar_day.weekday() == 0 or calendar_day.day == 1:
                sums = want.setdefault((midnight, stay["stage"], day), [0, 0])
                sums[0] += 1
                sums[1] += entered - day * rollup.DAY_US
            midnight += 1
    assert {key: tuple(sums) for key, sums in want.items()} == stored
    assert sum(n for n, _ in stored.values()) > 120  # many stays span a Monday or a first


@pytest.fixture(scope="module")
def funnel_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A synthetic funnel of 300 leads over a year, projected incrementally in small pages."""
    url = f"sqlite:///{tmp_path_factory.mktemp('rollup') / 'funnel.db'}"
    ledger = open_ledger(url)
    ledger.record([parse_fact(r) for r in generate(300, seed=11, months=12)])
    projection = Projection(ledger, page=500)
    projection.catch_up()
    projection.close()
    ledger.close()
    return url


@pytest.mark.parametrize(("kind", "tz", "by"), [
    ("day", "Asia/Kolkata", None),
    ("day", "UTC", "owner"),
    ("week", "America/New_York", "segment"),
    ("week", "Pacific/Chatham", None),
    ("month", "UTC", None),
    ("month", "Asia/Kolkata", "lead_source"),
    ("month", "Pacific/Chatham", "owner"),
    ("quarter", "America/New_York", None),
    ("quarter", "UTC", "segment"),
    ("quarter", "UTC", None),
])
def test_rollups_agree_with_the_stay_table(funnel_db: str, kind: str, tz: str,
                                           by: str | None) -> None:
    """Same rows either way, for every calendar, timezone and split."""
    start = date(2025, 6, 1) if kind == "day" else date(2024, 11, 1)
    options = ReportOptions(calendar=Calendar(kind, zone(tz)), start=start,
                            as_of=date(2025, 7, 15) if kind == "day" else date(2025, 10, 31),
                            by=by)
    for fast, slow in both_ways(funnel_db, options):
        assert fast == slow
        assert fast


@pytest.mark.parametrize(("as_of", "within", "by"), [
    (date(2025, 4, 30), 30, None),
    (date(2025, 6, 17), 90, "segment"),
    (date(2025, 8, 1), 7, "owner"),
    (date(2025, 9, 30), 365, None),
])
def test_cohort_conversion_before_the_last_entry_agrees_with_the_stay_table(
        funnel_db: str, as_of: date, within: int, by: str | None) -> None:
    """A cap months before the funnel's end: the roll-up less the later reaches, exactly."""
    options = ReportOptions(start=date(2024, 11, 1), as_of=as_of, within=within, by=by,
                            basis="cohort")
    api = Reports(open_ledger(funnel_db).config)
    fast = api.run("conversion", options).rows
    api.reader._rollups = False  # noqa: SLF001 (hide the roll-ups: scan the stays)
    slow = api.run("conversion", options).rows
    api.close()
    assert fast == slow
    assert any(row[6] for row in fast)


@pytest.mark.parametrize("stage", ["mql", "sqo", "won"])
def test_rollups_agree_under_a_stage_filter(funnel_db: str, stage: str) -> None:
    """``--stage`` filters the same rows out either way."""
    options = ReportOptions(calendar=Calendar("month", zone("Asia/Kolkata")),
                            start=date(2024, 11, 1), as_of=date(2025, 10, 31), stage=stage)
    for fast, slow in both_ways(funnel_db, options):
        assert fast == slow


def test_rollups_on_both_databases(db_url: str) -> None:
    """PostgreSQL and SQLite roll-ups give the stay table's numbers, before 1970 included."""
    ledger = open_ledger(db_url)
    records = list(generate(80, seed=2, months=6))
    ledger.record([parse_fact(r) for r in records])
    old = [
        {"type": "stage_changed", "source": "old", "source_id": f"o{i}", "actor": "import",
         "lead_id": f"OLD{i % 3}", "to_stage": stage,
         "occurred_at": (datetime(1969, 12, 31, 20, tzinfo=UTC) + timedelta(hours=3 * i))
         .isoformat().replace("+00:00", "Z")}
        for i, stage in enumerate(["inquiry", "mql", "sal", "mql", "sql", "sqo"])
    ]
    ledger.record([parse_fact(r) for r in old])
    projection = Projection(ledger)
    projection.catch_up()
    projection.close()
    ledger.close()
    for tz, start in (("America/New_York", date(1969, 12, 1)), ("UTC", date(1969, 12, 1)),
                      ("UTC", date(2024, 1, 1))):
        options = ReportOptions(calendar=Calendar("month", zone(tz)), start=start,
                                as_of=date(2025, 12, 31))
        for fast, slow in both_ways(db_url, options):
            assert fast == slow


def test_known_at_reads_the_bitemporal_tables(funnel_db: str) -> None:
    """An earlier ledger time is not in the roll-ups: those reports scan the stays."""
    reader = Reader(open_ledger(funnel_db).config)
    from projections.balances import usable  # noqa: PLC0415
    from projections.window import Window  # noqa: PLC0415

    now = Window.resolve(ReportOptions(as_of=date(2025, 10, 31)))
    then = Window.resolve(ReportOptions(as_of=date(2025, 10, 31),
                                        known_at=datetime(2025, 6, 1, tzinfo=UTC)))
    assert usable(reader, now)
    assert not usable(reader, then)
    reader.close()


def test_day_of_floors_before_1970() -> None:
    """Days are floored, so an instant just before the epoch is on day -1."""
    assert rollup.day_of(-1) == -1
    assert rollup.day_of(0) == 0
    assert rollup.day_of(rollup.DAY_US - 1) == 0
    assert rollup.day_of(-rollup.DAY_US) == -1
    assert rollup.day_of(-rollup.DAY_US - 1) == -2


@PROPERTY
@given(histories(), st.sampled_from(ZONES), st.sampled_from([None, "segment"]),
       st.sampled_from([20, 30]))
def test_rollups_agree_on_generated_histories(records, tz, by, within):
    """Ties, corrections and retractions: the roll-ups still match the stays."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp, 'a.db')}"
        record_all(url, records, [])
        ledger = open_ledger(url)
        projection = Projection(ledger, page=3)
        projection.catch_up()
        projection.close()
        ledger.close()
        options = OPTIONS.replace(calendar=Calendar("month", zone(tz)), by=by, within=within)
        for fast, slow in both_ways(url, options):
            assert fast == slow


def _stage_records(moves: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """stage_changed records from (lead, stage, ISO time)."""
    return [
        {"type": "stage_changed", "source": "story", "source_id": f"m{i}", "actor": "crm",
         "lead_id": lead, "to_stage": stage, "occurred_at": at}
        for i, (lead, stage, at) in enumerate(moves)
    ]


COHORT_STORY = [
    # same instant, a re-entry in the same month, a reach exactly 30 days after the entry
    ("A", "inquiry", "2025-01-03T10:00:00Z"), ("A", "mql", "2025-01-03T10:00:00Z"),
    ("A", "sal", "2025-01-05T00:00:00Z"), ("A", "mql", "2025-01-06T00:00:00Z"),
    ("A", "sql", "2025-02-02T10:00:00Z"), ("A", "won", "2025-03-01T00:00:00Z"),
    # recycled and back the next month: a member of both months' cohorts
    ("B", "mql", "2025-01-20T00:00:00Z"), ("B", "recycled", "2025-01-25T00:00:00Z"),
    ("B", "mql", "2025-02-10T00:00:00Z"), ("B", "sal", "2025-02-11T00:00:00Z"),
    # reaches sal, sql and sqo only by skipping them; then sql directly, later
    ("C", "mql", "2025-01-31T23:59:59Z"), ("C", "sqo", "2025-02-01T00:00:00Z"),
    ("C", "sql", "2025-03-15T00:00:00Z"),
    # a stage entered at the same instant as the one before: reached from it
    ("E", "inquiry", "2025-01-10T00:00:00Z"), ("E", "mql", "2025-01-10T00:00:00Z"),
    # a lead with a dimension row; its entries just before and after midnight UTC
    ("D", "inquiry", "2025-02-28T23:59:59.999999Z"), ("D", "mql", "2025-03-01T00:00:00Z"),
]


def _project_story(db_url: str) -> None:
    """Record :data:`COHORT_STORY` (lead D with a segment) and project it a few facts at a time."""
    records = _stage_records(COHORT_STORY)
    records.append({"type": "lead_captured", "source": "story", "source_id": "cD",
                    "actor": "crm", "lead_id": "D", "occurred_at": "2025-02-01T00:00:00Z",
                    "attributes": {"segment": "enterprise"}})
    ledger = open_ledger(db_url)
    ledger.record([parse_fact(r) for r in records])
    projection = Projection(ledger, page=4)
    projection.catch_up()
    projection.close()
    ledger.close()


def _check_paths(db_url: str, name: str, cases: list[tuple[ReportOptions, bool]],
                 rolled: list[ReportOptions]) -> None:
    """Each case reads the roll-up (``rolled`` gets its options) or not, as expected.

    Either way it gives the same rows as the stay tables.
    """
    for options, expected in cases:
        rolled.clear()
        api = Reports(open_ledger(db_url).config)
        fast = api.run(name, options).rows
        assert bool(rolled) == expected, options
        api.reader._rollups = False  # noqa: SLF001 (hide the roll-ups: scan the stays)
        slow = api.run(name, options).rows
        api.close()
        assert fast == slow, options
        assert fast


def test_cohort_conversion_reads_its_rollup_when_it_can(db_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The roll-up answers cohort conversion up to now, in UTC, for a kept ``--within``.

    Ties, re-entries, skips and a reach exactly at the limit give the stay table's counts.
    Another ``--within`` and a timezone whose midnight is not UTC's read the stay table. A cap
    before the last stay's entry reads the roll-up, less what the leads with later stays
    reached after the cap (read from their stays).
    """
    from projections import conversion  # noqa: PLC0415

    _project_story(db_url)
    rolled: list[ReportOptions] = []
    real = conversion._rolled_cohorts  # noqa: SLF001 - whether the roll-up is read is the point

    def spy(reader: Reader, window: Any, sources: list[str]) -> Any:
        rolled.append(window.options)
        return real(reader, window, sources)

    monkeypatch.setattr(conversion, "_rolled_cohorts", spy)
    base = ReportOptions(calendar=Calendar("month"), start=date(2025, 1, 1),
                         as_of=date(2025, 3, 31), basis="cohort")
    cases = [
        (base, True),
        (base.replace(within=7, by="segment"), True),
        (base.replace(within=365, stage="mql", calendar=Calendar("week")), True),
        (base.replace(within=29), False),
        (base.replace(calendar=Calendar("month", zone("America/New_York"))), False),
        (base.replace(as_of=date(2025, 3, 10)), True),
        (base.replace(as_of=date(2025, 2, 28), stage="inquiry"), True),  # D's mql: at the cap
        (base.replace(as_of=date(2025, 2, 1), by="segment", within=90), True),
        (base.replace(as_of=date(2025, 1, 20), calendar=Calendar("week"), within=7), True),
    ]
    _check_paths(db_url, "conversion", cases, rolled)
    rolled.clear()
    api = Reports(open_ledger(db_url).config)
    rows = api.run("conversion", base.replace(stage="mql")).rows
    api_rows = api.run("conversion", base.replace(stage="inquiry")).rows
    api.close()
    january = {row[2]: row[4:] for row in rows if row[0] == "2025-01"}
    # Members: A (its re-entry on the 6th is not counted again), B, C and E. sal: A and B entered
    # it, C skipped it. sql: A exactly 30 days after its entry, C by skipping it at once (and
    # entering it later). sqo: C entered it at once, A skipped it 57 days on. won: A, 57 days on.
    assert january == {
        "sal": [4, 3, 3 / 4, 3, 3 / 4, 1],
        "sql": [4, 2, 2 / 4, 2, 2 / 4, 0],
        "sqo": [4, 1, 1 / 4, 2, 2 / 4, 1],
        "won": [4, 0, 0.0, 1, 1 / 4, 0],
    }
    inquiry = [row[4:] for row in api_rows if row[:3] == ["2025-01", "inquiry", "mql"]]
    assert inquiry == [[2, 2, 1.0, 2, 1.0, 0]]  # A and E, both at the same instant
    february = {row[2]: row[4:] for row in rows if row[0] == "2025-02"}
    assert february["sal"] == [1, 1, 1.0, 1, 1.0, 0]  # B, back from recycled
    assert rolled


def test_velocity_durations_read_their_rollup_when_they_can(db_url: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Time in stage, lags and the sales cycle come from ``rl_roll_dur`` (current knowledge, UTC).

    The story's same-instant entries, skips and re-entries give the stay table's rows; a
    timezone whose midnight is not UTC's, ``--known-at`` and a ``--by`` split read the stay
    table.
    """
    from projections import velocity  # noqa: PLC0415

    _project_story(db_url)
    rolled: list[ReportOptions] = []
    real = velocity._rolled_durations  # noqa: SLF001 - whether the roll-up is read is the point

    def spy(reader: Reader, window: Any, measured: list[tuple[str, str]]) -> Any:
        rolled.append(window.options)
        return real(reader, window, measured)

    monkeypatch.setattr(velocity, "_rolled_durations", spy)
    base = ReportOptions(calendar=Calendar("month"), start=date(2025, 1, 1),
                         as_of=date(2025, 3, 31))
    cases = [
        (base, True),
        (base.replace(calendar=Calendar("week")), True),
        (base.replace(calendar=Calendar("quarter"), start=date(2024, 10, 1)), True),
        (base.replace(stage="sql", as_of=date(2025, 3, 10)), True),
        (base.replace(by="segment"), False),  # the roll-up holds every lead together
        (base.replace(calendar=Calendar("month", zone("America/New_York"))), False),
        (base.replace(known_at=datetime.now(UTC)), False),
    ]
    _check_paths(db_url, "velocity", cases, rolled)
    api = Reports(open_ledger(db_url).config)
    rows = api.run("velocity", base).rows
    api.close()
    lags = {(row[0], row[2]): row[3:] for row in rows if row[1] in {"lag", "sales_cycle"}}
    times = {(row[0], row[2]): row[3:] for row in rows if row[1] == "time_in_stage"}
    # January's completed mql stays: A's first (1 day 14 h) and B's until recycled (5 days);
    # A's re-entry ends in February. Inquiry: A and E leave it at the instant they enter it.
    assert times["2025-01", "mql"] == [2, (38 / 24 + 5) / 2, 38 / 24, 5.0]
    assert times["2025-01", "inquiry"] == [2, 0.0, 0.0, 0.0]
    second, day = 1 / 86_400, 1.0
    # January: A's inquiry->mql at the same instant (0) and E's (0); A's mql->sal, 1 day 14 h.
    assert lags["2025-01", "inquiry->mql"] == [2, 0.0, 0.0, 0.0]
    assert lags["2025-01", "mql->sal"] == [1, 38 / 24, 38 / 24, 38 / 24]
    # February: C skips sal one second after entering mql; B reaches it 22 days after its first
    # mql entry (its re-entry does not count). Median rank 1, p90 rank 2.
    assert lags["2025-02", "mql->sal"] == [2, (second + 22 * day) / 2, second, 22 * day]
    # March: A's sql->sqo, by skipping sqo into won, 26 days 14 hours after entering sql; C's
    # sql->sqo is negative (sqo was reached first) and left out. A's cycle from its first entry.
    assert lags["2025-03", "sql->sqo"] == [1, 26 + 14 / 24, 26 + 14 / 24, 26 + 14 / 24]
    assert lags["2025-03", "won"] == [1, 56 + 14 / 24, 56 + 14 / 24, 56 + 14 / 24]
    assert ("2025-03", "sqo->won") not in lags  # A skipped sqo: no entry to start from


def test_open_ages_at_bounds_read_the_ended_stay_rollup(db_url: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """At a period end that starts a UTC month or an ISO week, open ages come from counts.

    Stays that end exactly at the end are open at it; a stay entered exactly then is not. Day
    periods mix both ways (only Mondays and firsts are bounds; the other days are swept), as
    does a cap on a Tuesday (its midnight's ended stays counted in SQL); a timezone whose
    midnight is not UTC's and a ``--by`` split sweep every end. Every case gives the stay
    table's rows.
    """
    from projections import velocity  # noqa: PLC0415

    _project_story(db_url)
    rolled: list[ReportOptions] = []
    ends: list[int] = []
    counted: list[int] = []
    real = velocity._bound_ages  # noqa: SLF001 - whether the roll-up is read is the point

    def spy(reader: Reader, window: Any, bounds: list[int], never: Any, others: list[int]) -> Any:
        if bounds:
            rolled.append(window.options)
            ends.extend(window.periods[i].end for i in bounds)
        counted.extend(window.periods[i].end for i in others)
        return real(reader, window, bounds, never, others)

    monkeypatch.setattr(velocity, "_bound_ages", spy)
    base = ReportOptions(calendar=Calendar("month"), start=date(2025, 1, 1),
                         as_of=date(2025, 3, 31))
    cases = [
        (base, True),
        (base.replace(calendar=Calendar("week"), stage="mql"), True),
        (base.replace(calendar=Calendar("day"), start=date(2025, 1, 25)), True),
        (base.replace(stage="sql", as_of=date(2025, 3, 11)), True),
        (base.replace(by="segment"), False),
        (base.replace(calendar=Calendar("month", zone("Asia/Kolkata"))), False),
    ]
    _check_paths(db_url, "velocity", cases, rolled)
    days = {end // rollup.DAY_US for end in ends}
    epoch = date(1970, 1, 1)
    assert all((epoch + timedelta(days=d)).weekday() == 0 or (epoch + timedelta(days=d)).day == 1
               for d in days)
    tuesday = rollup.day_of(datetime(2025, 3, 12, tzinfo=UTC).timestamp() * 10**6)
    assert tuesday not in days
    assert [end // rollup.DAY_US for end in counted] == [tuesday]  # the cap's: a day after
    api = Reports(open_ledger(db_url).config)
    rows = api.run("velocity", base).rows
    api.close()
    ages = {(row[0], row[2]): row[3:] for row in rows if row[1] == "open_age"}
    second, micro = 1 / 86_400, 1 / 86_400_000_000
    # 1 February: A's mql re-entry (26 days), C's mql (one second: it left at that midnight)
    # and E's (22 days); B recycled 7 days before. Median rank 2, p90 rank 3.
    assert ages["2025-01", "mql"] == [3, (26 + second + 22) / 3, 22.0, 26.0]
    assert ages["2025-01", "recycled"] == [1, 7.0, 7.0, 7.0]
    # 1 March: A's sql (left for won at that midnight), B's sal, C's sqo, E's mql, and D's
    # inquiry, one microsecond old; D's mql, entered at that midnight, is not open at it.
    assert ages["2025-02", "sql"] == [1, 26 + 14 / 24, 26 + 14 / 24, 26 + 14 / 24]
    assert ages["2025-02", "sqo"] == [1, 28.0, 28.0, 28.0]
    assert ages["2025-02", "mql"] == [1, 50.0, 50.0, 50.0]
    assert ages["2025-02", "inquiry"] == [1, micro, micro, micro]


def test_the_cohort_rollup_is_the_same_when_the_rebuild_adds_it_in_parts(
    funnel_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild that adds its cohort sums to the table every few keys builds the same table."""
    import sqlite3  # noqa: PLC0415

    def cohort_rows(url: str) -> list[tuple[Any, ...]]:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT * FROM rl_roll_cohort").all()
        engine.dispose()
        return sorted(map(tuple, rows))

    copy = tmp_path / "copy.db"
    # SQLite's backup, not a file copy: what the module's tests wrote may still be in the WAL
    with sqlite3.connect(funnel_db.removeprefix("sqlite:///")) as source, \
            sqlite3.connect(copy) as target:
        source.backup(target)
    source.close()
    target.close()
    url = f"sqlite:///{copy}"
    monkeypatch.setattr(rollup, "COHORT_FLUSH_KEYS", 7)
    ledger = open_ledger(url)
    projection = Projection(ledger)
    projection.rebuild()
    projection.close()
    ledger.close()
    whole = cohort_rows(funnel_db)
    assert len(whole) > 7 * 10
    assert cohort_rows(url) == whole


def test_an_older_build_without_week_and_quarter_rows_gets_them_at_its_next_catch_up(
        db_url: str) -> None:
    """A build before the week and quarter grains of ``rl_roll_dur`` answers from days and months.

    Weekly and quarterly velocity are then the same as with those rows; the next catch-up sums
    them from the day and month rows, equal to what the build wrote, and once only.
    """
    _project_story(db_url)
    config = open_ledger(db_url).config
    roll = tables(config.schema)["roll_dur"]
    grains = (rollup.WEEK, rollup.QUARTER)
    asked = [ReportOptions(calendar=Calendar(kind), start=date(2024, 10, 1),
                           as_of=date(2025, 3, 31)) for kind in ("week", "quarter")]

    def stored() -> list[Any]:
        reader = Reader(config)
        with reader.engine.connect() as conn:
            found = conn.execute(sa.select(roll).where(roll.c.grain.in_(grains))
                                 .order_by(*roll.primary_key.columns)).all()
        reader.close()
        return found

    def report() -> tuple[list[Any], list[bool]]:
        api = Reports(config)
        rows = [api.run("velocity", options).rows for options in asked]
        used = [api.reader.has_grain("roll_dur", grain) for grain in grains]
        api.close()
        return rows, used

    built = stored()
    assert {row.grain for row in built} == set(grains)
    with_grains, used = report()
    assert used == [True, True]
    reader = Reader(config)
    with reader.engine.begin() as conn:
        conn.execute(sa.delete(roll).where(roll.c.grain.in_(grains)))
    reader.close()
    assert report() == (with_grains, [False, False])
    ledger = open_ledger(db_url)
    for _ in range(2):
        projection = Projection(ledger)
        projection.catch_up()
        projection.close()
        assert stored() == built
    ledger.close()
    assert report() == (with_grains, [True, True])
