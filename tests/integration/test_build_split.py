"""A rebuild that builds half of its roll-ups in a second process builds the same tables.

:mod:`projections.build_split` runs :func:`projections.rollup.build_rest` in a child process
(on SQLite into a scratch file copied in afterwards) while the rebuild runs ``build_leads``.
Rebuilds of the same ledger with and without the split are compared table by table, on both
backends; a child that fails, or a rebuild that fails meanwhile, leaves the live tables as they
were and no scratch file behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.synthetic import generate
from ledger import processes
from ledger.application import open_ledger
from ledger.codec import parse_fact
from ledger.storage import parse_url
from projections import build_split, rollup
from projections.build_split import SplitBuildFailed
from projections.runner import Projection
from projections.schema import TABLES, tables


def record_funnel(url: str) -> None:
    ledger = open_ledger(url)
    ledger.record([parse_fact(r) for r in generate(250, seed=11, months=9)])
    ledger.close()


def rebuild(url: str, *, split: bool) -> int:
    ledger = open_ledger(url)
    projection = Projection(ledger, split=split)
    try:
        return projection.rebuild()
    finally:
        projection.close()
        ledger.close()


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table's rows, sorted."""
    config = parse_url(url)
    live = tables(config.schema)
    engine = sa.create_engine(config.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            return {
                name: sorted(map(tuple, conn.execute(sa.select(live[name])).all()), key=repr)
                for name in TABLES
            }
    finally:
        engine.dispose()


def scratch_files(url: str) -> list[Path]:
    config = parse_url(url)
    if config.backend != "sqlite":
        return []
    name = Path(config.env["SQLITE_DBNAME"])
    return sorted(name.parent.glob(f"{name.name}.rollups-*"))


def test_a_split_rebuild_builds_the_same_tables(db_url: str) -> None:
    """Every table, roll-ups included, equals the one-process rebuild's, on both backends."""
    record_funnel(db_url)
    position = rebuild(db_url, split=False)
    whole = dump(db_url)
    for name in rollup.REST_TABLES:
        assert whole[name], name  # each table the child fills has rows to compare
    assert rebuild(db_url, split=True) == position
    assert dump(db_url) == whole
    assert scratch_files(db_url) == []


def test_roll_ups_added_in_parts_are_the_same(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Roll-up rows written a few at a time (cohort sums added every few keys) are the same."""
    record_funnel(db_url)
    rebuild(db_url, split=False)
    whole = dump(db_url)
    assert len(whole["roll_cohort"]) > 7 * 10
    monkeypatch.setattr(rollup, "COHORT_FLUSH_KEYS", 7)
    monkeypatch.setattr(rollup, "WRITER_ROWS", 5)
    rebuild(db_url, split=False)  # every writer in this process, where the patches apply
    assert dump(db_url) == whole


def test_a_failed_child_leaves_the_live_tables(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child that cannot build stops the rebuild before the swap, with one line saying why."""
    record_funnel(sqlite_url)
    rebuild(sqlite_url, split=False)
    before = dump(sqlite_url)
    elsewhere = parse_url(f"sqlite:///{tmp_path / 'not-the-ledger.db'}")  # no shadow tables there
    start = build_split.SplitBuild.__enter__

    def enter(self: build_split.SplitBuild) -> build_split.SplitBuild:
        self.config = elsewhere
        return start(self)

    monkeypatch.setattr(build_split.SplitBuild, "__enter__", enter)
    with pytest.raises(SplitBuildFailed) as failed:
        rebuild(sqlite_url, split=True)
    message = str(failed.value)
    assert "no such table" in message
    assert "run 'revledger rebuild' again" in message
    assert "\n" not in message
    assert dump(sqlite_url) == before
    assert scratch_files(sqlite_url) == []


def test_a_rebuild_failing_meanwhile_stops_the_child(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error in the rebuild's half stops the child and leaves the live tables as they were."""
    record_funnel(db_url)
    rebuild(db_url, split=False)
    before = dump(db_url)
    children: list[build_split.SplitBuild] = []
    start = build_split.SplitBuild.__enter__

    def enter(self: build_split.SplitBuild) -> build_split.SplitBuild:
        children.append(self)
        return start(self)

    def broken(*_: Any) -> None:
        raise RuntimeError("the rebuild's half failed")

    monkeypatch.setattr(build_split.SplitBuild, "__enter__", enter)
    monkeypatch.setattr(rollup, "build_leads", broken)
    with pytest.raises(RuntimeError, match="half failed"):
        rebuild(db_url, split=True)
    assert len(children) == 1
    child = children[0]._child  # noqa: SLF001
    assert child is not None
    assert child.returncode is not None  # stopped (or finished) and reaped
    assert dump(db_url) == before
    assert scratch_files(db_url) == []


def test_only_a_large_ledger_on_a_second_core_splits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The split is for ledgers of MIN_FACTS facts or more, on a database file, with two cores."""
    on_disk = tmp_path / "ledger.db"
    on_disk.touch()
    config = parse_url(f"sqlite:///{on_disk}")
    monkeypatch.setattr(processes.os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    assert build_split.wanted(config, build_split.MIN_FACTS)
    assert not build_split.wanted(config, build_split.MIN_FACTS - 1)
    assert not build_split.wanted(parse_url("sqlite:///:memory:"), build_split.MIN_FACTS)
    assert build_split.wanted(parse_url("postgresql://u@h/db"), build_split.MIN_FACTS)
    monkeypatch.setattr(processes.os, "sched_getaffinity", lambda _: {0}, raising=False)
    assert not build_split.wanted(config, build_split.MIN_FACTS)
