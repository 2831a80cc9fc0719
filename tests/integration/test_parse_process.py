"""Ingest with the input parsed in a second process records exactly what one process records."""

from __future__ import annotations

import gzip
import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from psycopg import sql

from adapters import parse_process
from adapters.canonical import InputUnreadable, ingest_files
from adapters.pipeline import LoadSummary
from ledger import processes
from ledger.application import Ledger, open_ledger
from ledger.codec import fact_to_record
from tests.conftest import PG_DSN
from tests.factories import record


def _lines() -> list[bytes]:
    """Facts over several batches of 7, with every kind of reject, duplicate and correction."""
    lines: list[bytes] = []

    def add(rec: dict[str, Any] | str) -> None:
        lines.append(rec.encode() if isinstance(rec, str) else orjson.dumps(rec))

    for i in range(40):
        day = f"2025-01-{1 + i % 28:02d}T09:00:00Z"
        add(record("stage_changed", f"s{i}", day, lead_id=f"L{i % 9}", to_stage="mql"))
        if i % 6 == 0:
            add(record("stage_changed", f"s{i}", day, lead_id=f"L{i % 9}", to_stage="mql"))
        if i % 11 == 3:
            add("not json {")
        if i % 13 == 5:
            add(record("stage_changed", f"bad{i}", "yesterday", lead_id="L1", to_stage="mql"))
        if i == 17:
            add("   ")
    # a fact restored from an export keeps its own ledger time
    restored = record("stage_changed", "old", "2024-12-01T00:00:00Z", lead_id="L1", to_stage="sal")
    add({**restored, "recorded_at": "2025-02-01T00:00:00Z"})
    # corrections: of a fact in the same batch, of one in an earlier batch, an amendment that
    # would make its target invalid, and one naming a fact the ledger does not hold
    add(record("stage_changed", "late", "2025-02-02T00:00:00Z", lead_id="L2", to_stage="sal"))
    add(record("fact_retracted", "r1", target_source="test", target_source_id="late",
               reason="duplicate lead"))
    add(record("stage_changed", "late2", "2025-02-03T00:00:00Z", lead_id="L3", to_stage="sal"))
    add(record("fact_amended", "a3", target_source="test", target_source_id="late2",
               changes={"to_stage": "sql"}, reason="wrong stage"))
    add(record("fact_amended", "a1", target_source="test", target_source_id="s2",
               changes={"to_stage": "sql"}, reason="wrong stage"))
    add(record("fact_amended", "a2", target_source="test", target_source_id="s3",
               changes={"occurred_at": "yesterday"}, reason="typo"))
    add(record("fact_retracted", "r2", target_source="test", target_source_id="missing",
               reason="gone"))
    add(record("stage_changed", "s1", "2025-01-02T09:00:00Z", lead_id="L1", to_stage="mql"))
    return lines


def _write(path: Path, lines: list[bytes]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else Path.open
    with opener(path, "wb") as handle:  # type: ignore[operator]
        handle.write(b"\n".join(lines) + b"\n")
    return path


def _contents(ledger: Ledger) -> list[dict[str, Any]]:
    """Every recorded fact in recording order, without the ledger time of the live batches."""
    out = []
    for _, fact in ledger.facts():
        rec = fact_to_record(fact)
        if rec["source_id"] != "old":
            rec.pop("recorded_at")
        out.append(rec)
    return out


def _batches(ledger: Ledger) -> list[list[str]]:
    """The facts grouped by ledger time, in recording order: one group per committed batch."""
    facts = [fact for _, fact in ledger.facts()]
    groups = itertools.groupby(facts, key=lambda fact: fact.recorded_at)
    return [[fact.source_id for fact in group] for _, group in groups]


def _ingest(url: str, path: Path, rejects: Path, **options: Any) -> tuple[Ledger, LoadSummary]:
    ledger = open_ledger(url)
    summary = ingest_files(ledger, [str(path)], rejects_path=rejects, batch_size=7, **options)
    return ledger, summary[0]


@pytest.fixture
def other_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """Another empty ledger on ``db_url``'s backend."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'other.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{PG_DSN}?schema={schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_the_same_facts_rejects_batches_and_counts(db_url: str, other_url: str, tmp_path: Path,
                                                   suffix: str) -> None:
    """Both ways record the same facts in the same batches, and reject the same lines."""
    path = _write(tmp_path / f"in{suffix}", _lines())
    one, one_summary = _ingest(db_url, path, tmp_path / "one.rejects", parallel=False)
    seen: list[tuple[int, int | None]] = []
    two, two_summary = _ingest(
        other_url, path, tmp_path / "two.rejects", parallel=True,
        progress=lambda _summary, done, total: seen.append((done, total)),
    )
    assert two_summary.row()[1:] == one_summary.row()[1:]
    assert one_summary.rejected == 9  # 7 lines that are not facts, 2 corrections that fail
    assert one_summary.duplicates == 8
    assert _contents(two) == _contents(one)
    assert _batches(two) == _batches(one)
    assert (tmp_path / "two.rejects").read_bytes() == (tmp_path / "one.rejects").read_bytes()
    size = path.stat().st_size
    assert seen[-1] == (size, size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert all(two.get("test", i) is not None for i in ("r1", "a1", "a3"))
    assert any({"late2", "a3"} <= set(batch) for batch in _batches(two))  # the same batch
    one.close()
    two.close()


class _Interrupted(Exception):
    pass


@pytest.mark.parametrize("ways", [(True, True), (False, True), (True, False)])
def test_an_interrupted_load_resumes_either_way(db_url: str, other_url: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                ways: tuple[bool, bool]) -> None:
    """A load stopped after two batches resumes at its checkpoint, with or without the child."""
    first, then = ways
    path = _write(tmp_path / "in.jsonl", _lines())
    whole, whole_summary = _ingest(db_url, path, tmp_path / "whole.rejects", parallel=False)
    url = other_url
    record_batch = Ledger.record
    calls = itertools.count()

    def failing(self: Ledger, *args: Any, **kwargs: Any) -> Any:
        if next(calls) == 2:
            raise _Interrupted
        return record_batch(self, *args, **kwargs)

    monkeypatch.setattr(Ledger, "record", failing)
    with pytest.raises(_Interrupted):
        _ingest(url, path, tmp_path / "part.rejects", parallel=first)
    monkeypatch.setattr(Ledger, "record", record_batch)
    resumed, summary = _ingest(url, path, tmp_path / "part.rejects", parallel=then)
    assert summary.skipped > 0
    assert summary.skipped + summary.read == whole_summary.read
    assert _contents(resumed) == _contents(whole)
    resumed.close()
    whole.close()


def test_a_truncated_file_fails_as_it_does_in_one_process(sqlite_url: str, tmp_path: Path) -> None:
    """An error reading the input in the child is raised in the parent, as itself."""
    path = tmp_path / "in.jsonl.gz"
    whole = gzip.compress(b"\n".join(_lines()) + b"\n")
    path.write_bytes(whole[: len(whole) // 2])
    errors = []
    for parallel in (False, True):
        ledger = open_ledger(sqlite_url)
        with pytest.raises(InputUnreadable) as raised:
            ingest_files(ledger, [str(path)], rejects_path=tmp_path / "r", parallel=parallel)
        errors.append(str(raised.value))
        ledger.close()
    assert errors[0] == errors[1]
    assert errors[0].startswith(f"cannot read {path} after line ")
    assert "Compressed file ended before the end-of-stream marker was reached" in errors[0]


def test_a_child_that_dies_is_reported(tmp_path: Path) -> None:
    """A child that ends without its last message gives one line naming the file and why."""
    path = _write(tmp_path / "in.jsonl", _lines())
    parsed = parse_process.ParseProcess(str(path), done=0, batch_size=7)
    parsed._args[2] = "seven"  # noqa: SLF001 - the child then fails before it parses anything
    with parsed, pytest.raises(parse_process.ParseProcessFailed) as raised:
        list(parsed)
    message = str(raised.value)
    assert f"the process parsing {path} stopped (exit code 1): ValueError" in message
    assert "run the same command again" in message


def test_leaving_early_stops_the_child(tmp_path: Path) -> None:
    """The child is stopped (not left parsing) when the parent leaves after one batch."""
    path = _write(tmp_path / "in.jsonl", _lines() * 50)
    with parse_process.ParseProcess(str(path), done=0, batch_size=7) as parsed:
        first = next(iter(parsed))
    assert first.read >= 7
    child = parsed._child  # noqa: SLF001 - whether it still runs is the point
    assert child is not None
    assert child.returncode is not None


def test_only_large_files_on_several_cores_are_parsed_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Standard input and small files stay in one process; so does everything on one core."""
    small = _write(tmp_path / "small.jsonl", _lines())
    assert not parse_process.usable("-")
    assert not parse_process.usable(str(small))
    monkeypatch.setattr(parse_process, "MIN_BYTES", 1)
    monkeypatch.setattr(processes.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    assert parse_process.usable(str(small))
    monkeypatch.setattr(processes.os, "sched_getaffinity", lambda _pid: {0}, raising=False)
    assert not parse_process.usable(str(small))


def test_a_message_is_written_whole_however_the_pipe_takes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each write that takes only part of a message is followed by one of the rest, in order."""
    written: list[bytes] = []

    def short_write(_fd: int, data: memoryview) -> int:
        taken = bytes(data[:7])  # the pipe takes at most 7 bytes at a time
        written.append(taken)
        return len(taken)

    monkeypatch.setattr(parse_process.os, "write", short_write)
    message = bytes(range(256)) * 3
    parse_process.write_all(1, message)
    assert b"".join(written) == message
    assert len(written) == -(-len(message) // 7)
