"""rl_roll_rank: kept through stale cells and older builds, on both backends.

Velocity reads a period that is one whole UTC day, ISO week, UTC month or quarter from the
cell's kept count, sum, median and p90 (projections/ranks.py); any other period, and a cell a
catch-up has marked stale, from the histograms. Both ways must give the same rows. That a
catch-up keeps the table equal to a rebuild's is checked with every other table in
tests/integration/test_projections_properties.py; that the kept ranks are the reference's
nearest ranks, in its reference test.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.synthetic import generate
from ledger.application import open_ledger
from ledger.codec import parse_fact
from projections import ranks
from projections.api import Reports
from projections.periods import Calendar
from projections.reading import Reader
from projections.runner import Projection
from projections.schema import tables
from projections.window import ReportOptions

ASKED = [
    ReportOptions(calendar=Calendar(kind, fiscal_start=fiscal), start=start, as_of=as_of)
    for kind, fiscal, start, as_of in (
        ("month", 1, date(2024, 11, 1), date(2025, 10, 31)),
        ("month", 1, date(2024, 11, 1), date(2025, 10, 14)),  # the last month is cut short
        ("week", 1, date(2025, 3, 3), date(2025, 6, 29)),
        ("quarter", 1, date(2024, 10, 1), date(2025, 9, 30)),
        ("quarter", 2, date(2024, 11, 1), date(2025, 10, 31)),  # never a cell: histograms
        ("day", 1, date(2025, 5, 1), date(2025, 5, 31)),
    )
]


def _project(url: str, *, rebuild: bool = False) -> None:
    ledger = open_ledger(url)
    projection = Projection(ledger, page=400)
    projection.rebuild() if rebuild else projection.catch_up()
    projection.close()
    ledger.close()


@pytest.fixture
def funnel(db_url: str) -> str:
    """200 synthetic leads over a year, projected by a catch-up of small pages."""
    ledger = open_ledger(db_url)
    ledger.record([parse_fact(r) for r in generate(200, seed=5, months=12)])
    ledger.close()
    _project(db_url)
    return db_url


def _kept(url: str) -> list[Any]:
    reader = Reader(open_ledger(url).config)
    table = reader.tables["roll_rank"]
    with reader.engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
    reader.close()
    return rows


def _velocity(url: str, *, kept: bool = True) -> tuple[list[Any], bool]:
    """Every ``ASKED`` velocity report's rows, and whether the reader used rl_roll_rank."""
    api = Reports(open_ledger(url).config)
    if not kept:
        api.reader.has_ranks = lambda: False  # type: ignore[method-assign]
    rows = [api.run("velocity", options).rows for options in ASKED]
    used = api.reader.has_ranks()
    api.close()
    return rows, used


def _edit(url: str, change: Any) -> None:
    reader = Reader(open_ledger(url).config)
    with reader.engine.begin() as conn:
        change(conn, tables(reader.schema))
    reader.close()


def test_kept_ranks_give_the_rows_the_histograms_give(funnel: str) -> None:
    """Every calendar, whole and cut-short periods: the same rows with and without the table."""
    kept = _kept(funnel)
    assert {row.grain for row in kept} == set(ranks.GRAINS)
    assert all(row.median_us is not None and row.n > 0 for row in kept)
    rows, used = _velocity(funnel)
    assert used
    assert all(rows)
    assert _velocity(funnel, kept=False) == (rows, False)


def test_stale_cells_are_ranked_from_the_histograms_until_the_catch_up_ranks_them(
    funnel: str,
) -> None:
    """Marked stale, a cell's period reads the histograms; the next catch-up restores the row."""
    kept = _kept(funnel)
    rows, _ = _velocity(funnel)
    every = [tuple(row[:4]) for row in kept]
    _edit(funnel, lambda conn, t: ranks.mark_stale(conn, t, every[::3]))
    stale = [row for row in _kept(funnel) if row.median_us is None]
    assert len(stale) == len(every[::3])
    assert _velocity(funnel) == (rows, True)
    _project(funnel)
    assert _kept(funnel) == kept


def test_a_stale_cell_left_without_durations_is_dropped(funnel: str) -> None:
    """A cell marked stale whose durations all went (none in rl_roll_dur) loses its row."""
    kept = _kept(funnel)
    _edit(funnel, lambda conn, t: ranks.mark_stale(conn, t, [("m", 0, "lag", "mql->sql")]))
    assert len(_kept(funnel)) == len(kept) + 1
    _project(funnel)
    assert _kept(funnel) == kept


def test_an_older_build_without_the_table_gets_it_at_its_next_catch_up(funnel: str) -> None:
    """Reports do without it (from the histograms); the catch-up creates and fills it once."""
    kept = _kept(funnel)
    rows, _ = _velocity(funnel)
    _edit(funnel, lambda conn, t: t["roll_rank"].drop(conn))
    assert _velocity(funnel) == (rows, False)
    _project(funnel)
    assert _kept(funnel) == kept
    assert _velocity(funnel) == (rows, True)
    _project(funnel, rebuild=True)
    assert _kept(funnel) == kept
