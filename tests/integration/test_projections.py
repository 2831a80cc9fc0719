"""The funnel projection on both backends: exactly once (with a real kill), swap, known-at."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import open_ledger, parse_fact
from ledger.errors import StoreUnavailable
from ledger.storage import parse_url
from projections.api import Reports
from projections.periods import Calendar
from projections.runner import Projection
from projections.schema import TABLES, tables
from projections.window import ReportOptions
from tests.factories import restore_fact_bytes_layout

START = datetime(2025, 1, 1, tzinfo=UTC)
OPTIONS_KW: dict[str, Any] = {
    "calendar": Calendar("month"),
    "start": date(2025, 1, 1),
    "as_of": date(2025, 3, 31),
}
ROOT = Path(__file__).resolve().parents[2]


def move(n: int, lead: str, stage: str, day: int, recorded: datetime | None = None) -> Any:
    return parse_fact(
        {
            "type": "stage_changed",
            "lead_id": lead,
            "to_stage": stage,
            "source": "t",
            "source_id": f"m{n}",
            "actor": "a",
            "occurred_at": (START + timedelta(days=day)).isoformat(),
            "recorded_at": (recorded or START + timedelta(days=day)).isoformat(),
        }
    )


def funnel(leads: int) -> list[Any]:
    facts = []
    for i in range(leads):
        for j, stage in enumerate(("inquiry", "mql", "sal", "sql")[: 1 + i % 4]):
            facts.append(move(i * 10 + j, f"L{i}", stage, i % 60 + j * 3))
    return facts


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    config = parse_url(url)
    live = tables(config.schema)
    engine = sa.create_engine(config.sqlalchemy_url)
    with engine.connect() as conn:
        out = {n: sorted(map(tuple, conn.execute(sa.select(live[n]))), key=repr) for n in TABLES}
    engine.dispose()
    return out


def inventory(url: str, **options: Any) -> list[list[Any]]:
    api = Reports(parse_url(url))
    try:
        return api.run("inventory", ReportOptions(**{**OPTIONS_KW, **options})).rows
    finally:
        api.close()


def test_catch_up_is_exactly_once_after_a_kill_mid_catch_up(db_url, sqlite_url, tmp_path):
    """SIGKILL during catch-up, restart: the tables equal those of an uninterrupted run."""
    facts = funnel(600)
    other = sqlite_url if db_url != sqlite_url else f"sqlite:///{tmp_path / 'other.db'}"
    for url in (db_url, other):
        ledger = open_ledger(url)
        ledger.record(facts)
        ledger.close()
    script = (
        "import sys; from ledger import open_ledger; from projections.runner import Projection;"
        "Projection(open_ledger(sys.argv[1]), page=5).catch_up()"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", script, db_url], env=env)  # noqa: S603
    ledger = open_ledger(db_url)
    watcher = Projection(ledger)
    deadline = time.monotonic() + 60
    while watcher.position() < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert 0 < watcher.position() < ledger.position(), "the kill must land mid catch-up"
    watcher.catch_up()
    watcher.close()
    ledger.close()
    reference_ledger = open_ledger(other)
    reference = Projection(reference_ledger)
    reference.catch_up()
    reference.close()
    reference_ledger.close()
    assert dump(db_url) == dump(other)


def test_catch_up_twice_applies_nothing_new(db_url):
    """A second catch-up with no new facts changes nothing and reports zero."""
    ledger = open_ledger(db_url)
    ledger.record(funnel(20))
    projection = Projection(ledger, page=7)
    assert projection.catch_up() == ledger.position()
    before = dump(db_url)
    assert projection.catch_up() == 0
    assert dump(db_url) == before
    projection.close()
    ledger.close()


def projected(url: str) -> tuple[Any, Projection]:
    """A ledger of five leads, and its projection, caught up."""
    ledger = open_ledger(url)
    ledger.record(funnel(5))
    projection = Projection(ledger)
    projection.catch_up()
    return ledger, projection


def test_a_projection_missing_a_column_asks_for_a_rebuild(db_url):
    """Tables built by an older revledger: catch-up refuses with one line; a rebuild fixes it."""
    ledger, projection = projected(db_url)
    touch = projection.live["touch"]
    quote = projection.writer.dialect.identifier_preparer
    with projection.writer.begin() as conn:  # as built before touches carried their account
        for index in touch.indexes:
            index.drop(conn)
        conn.exec_driver_sql(
            f"ALTER TABLE {quote.format_table(touch)} DROP COLUMN {quote.quote('account_id')}"
        )
    ledger.record([move(900, "L900", "mql", 3)])
    with pytest.raises(
        StoreUnavailable, match=r"lacks rl_touch\.account_id; run 'revledger rebuild'"
    ):
        projection.catch_up()
    projection.rebuild()
    assert projection.catch_up() == 0
    assert projection.position() == ledger.position()
    projection.close()
    ledger.close()


def test_a_projection_holding_fact_bytes_asks_for_a_rebuild(db_url):
    """rl_fact as built before it named facts by ledger position: refused until a rebuild."""
    ledger, projection = projected(db_url)
    fact = projection.live["fact"]
    quote = projection.writer.dialect.identifier_preparer
    with projection.writer.begin() as conn:  # the old layout: a copy of each stored state
        restore_fact_bytes_layout(conn, quote.format_table(fact))
    ledger.record([move(900, "L900", "mql", 3)])
    lacks = r"lacks rl_fact\.occurred_us, rl_fact\.position; run 'revledger rebuild'"
    with pytest.raises(StoreUnavailable, match=lacks):
        projection.catch_up()
    before = inventory(db_url)
    projection.rebuild()
    assert projection.catch_up() == 0
    assert projection.position() == ledger.position()
    assert inventory(db_url) != before  # L900's move, applied by the rebuild
    projection.close()
    ledger.close()


def test_reports_name_the_facts_recorded_since_the_last_catch_up(db_url):
    """Reports note how many recorded facts the projection has not applied yet (both stores)."""
    ledger, projection = projected(db_url)
    ledger.record([move(900 + n, f"L90{n}", "mql", 3) for n in range(3)])
    api = Reports(parse_url(db_url))
    try:
        behind = api.run("inventory").notes
        known_at = datetime(2030, 1, 1, tzinfo=UTC)
        compared = api.compare("inventory", ReportOptions(**OPTIONS_KW, known_at=known_at)).notes
        projection.catch_up()
        current = api.run("inventory").notes
    finally:
        api.close()
        projection.close()
        ledger.close()
    assert behind[-1].startswith("the ledger holds 3 facts recorded since the projection")
    assert [note for note in compared if "recorded since" in note] == [behind[-1]]  # once
    assert not any("recorded since" in note for note in current)


def test_readers_see_the_previous_build_until_the_rebuild_swaps(db_url):
    """During a rebuild, reports answer from the old build; after it, from the new one."""
    ledger = open_ledger(db_url)
    ledger.record(funnel(30))
    projection = Projection(ledger, page=10)
    projection.catch_up()
    old = inventory(db_url)
    ledger.record([move(9000 + i, f"N{i}", "mql", 40) for i in range(25)])
    seen: list[list[list[Any]]] = []
    projection.rebuild(subjects=lambda _n: seen.append(inventory(db_url)))
    assert seen
    assert all(rows == old for rows in seen)
    assert inventory(db_url) != old
    projection.close()
    ledger.close()


def test_known_at_ignores_later_facts_and_later_corrections(db_url):
    """As known at T, a fact and a retraction recorded after T do not count."""
    ledger = open_ledger(db_url)
    t1, t2 = START + timedelta(days=70), START + timedelta(days=80)
    ledger.record([move(1, "A", "mql", 5, t1), move(2, "B", "mql", 6, t1)])
    ledger.record([move(3, "C", "mql", 7, t2)])
    retraction = parse_fact(
        {
            "type": "fact_retracted",
            "source": "fix",
            "source_id": "r1",
            "actor": "ops",
            "occurred_at": t2.isoformat(),
            "recorded_at": t2.isoformat(),
            "target_source": "t",
            "target_source_id": "m1",
            "reason": "duplicate",
        }
    )
    ledger.record([retraction])
    projection = Projection(ledger)
    projection.catch_up()
    projection.close()
    ledger.close()

    def mql_in_january(**options: Any) -> int:
        rows = inventory(db_url, **options)
        return next((r[4] for r in rows if r[0] == "2025-01" and r[3] == "mql"), 0)

    assert mql_in_january(known_at=t1 + timedelta(days=1)) == 2  # A and B
    assert mql_in_january() == 2  # B and C: A retracted
    assert mql_in_january(known_at=t1 - timedelta(days=1)) == 0


def project_and_report(url: str, name: str) -> list[list[Any]]:
    """Catch the projection up, then run report ``name`` over January to March 2025."""
    from projections.window import ReportOptions  # noqa: PLC0415

    projection = Projection(open_ledger(url))
    projection.catch_up()
    projection.close()
    projection.ledger.close()
    api = Reports(parse_url(url))
    try:
        return api.run(name, ReportOptions(**OPTIONS_KW)).rows
    finally:
        api.close()


def test_a_cohort_counts_stays_entered_at_the_instant_of_its_entry(db_url):
    """A stay entered at the very instant of the entry into A counts as reaching B.

    Reaching counts at or after the entry, whichever of the two comes first in the history.
    """
    ledger = open_ledger(db_url)
    ledger.record(
        [
            move(1, "L1", "mql", 3),  # then inquiry at the same instant
            move(2, "L1", "inquiry", 3),
            move(3, "L2", "inquiry", 5),
            move(4, "L2", "sal", 5),  # skips mql at the entry's instant
            move(5, "L2", "mql", 9),  # and enters it directly later
        ]
    )
    ledger.close()
    rows = project_and_report(db_url, "conversion")
    got = {(r[0], r[1], r[2]): (r[4], r[5], r[7], r[9]) for r in rows}
    assert got["2025-01", "inquiry", "mql"] == (2, 2, 2, 0)
    assert got["2025-01", "inquiry", "sal"] == (2, 1, 1, 0)
    assert got["2025-01", "mql", "sal"] == (2, 0, 0, 0)


def test_anomalies_are_listed_oldest_first_by_lead_id_in_code_point_order(db_url):
    """Ties at one instant order by lead id as Python orders strings, on either database.

    A database collation may put ``a1`` before ``B1``; each row carries its period.
    """
    ledger = open_ledger(db_url)
    ledger.record(
        [
            move(1, "a1", "inquiry", 3),
            move(2, "a1", "sql", 10),  # skips mql and sal
            move(3, "a1", "mql", 40),  # backward
            move(4, "B1", "inquiry", 5),
            move(5, "B1", "sal", 10),  # skips mql, at the same instant as a1's skip
        ]
    )
    ledger.close()
    rows = project_and_report(db_url, "anomalies")
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("2025-01", START + timedelta(days=10), "B1", "skip", "sal"),
        ("2025-01", START + timedelta(days=10), "a1", "skip", "sql"),
        ("2025-02", START + timedelta(days=40), "a1", "backward", "mql"),
    ]
