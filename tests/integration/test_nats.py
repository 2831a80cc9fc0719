"""The NATS JetStream consumer against the real local server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from adapters.nats.consumer import Batch, Consumer, Settings, StreamSummary
from ledger.application import Ledger, open_ledger
from ledger.events import fact_id
from tests.factories import record
from tests.jetstream import Names, consumer_info, publish, unique_stream

pytestmark = pytest.mark.nats


class Crash(Exception):
    """The process dies: raised where a real crash would stop the consumer."""


class CrashAfterCommit(Consumer):
    """A consumer that dies after the ledger commit, before acknowledging anything."""

    async def acknowledge(self, batch: Batch) -> None:
        """Die instead of acknowledging."""
        del batch
        raise Crash


@pytest.fixture
def names(nats_url: str) -> Iterator[Names]:
    """A fresh stream for the test, deleted afterwards."""
    with unique_stream(nats_url) as created:
        yield created


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    """An empty ledger on each backend."""
    opened = open_ledger(db_url)
    yield opened
    opened.close()


def settings(names: Names, tmp_path: Path, **options: object) -> Settings:
    """Consumer settings for the test's stream: short waits, so redelivery is quick."""
    defaults: dict[str, object] = {"max_wait": 0.2, "ack_wait": 1.0, "idle_exit": 0.5}
    return Settings(url=names.url, subject=names.subject, stream=names.stream,
                    durable=names.durable, rejects=tmp_path / "rejects.jsonl",
                    **{**defaults, **options})  # type: ignore[arg-type]


def consume(ledger: Ledger, config: Settings, kind: type[Consumer] = Consumer) -> StreamSummary:
    """Run a consumer until the stream is drained."""
    return asyncio.run(kind(ledger, config).run())


def lead_record(n: int) -> dict[str, object]:
    """The n-th distinct stage change."""
    return record("stage_changed", f"s{n}", lead_id=f"L{n}", to_stage="mql")


def messages(count: int) -> list[bytes]:
    """``count`` messages, one distinct fact each."""
    return [orjson.dumps(lead_record(n)) for n in range(count)]


def test_each_message_lands_once_and_repeats_are_duplicates(
    ledger: Ledger, names: Names, tmp_path: Path
) -> None:
    """Every fact is recorded once, a re-published fact counts as a duplicate, all are acked."""
    publish(names, messages(30) + messages(30))
    summary = consume(ledger, settings(names, tmp_path, batch_size=25))
    counts = (summary.messages, summary.read, summary.recorded, summary.duplicates)
    assert counts == (60, 60, 30, 30)
    assert ledger.position() == 30
    assert ledger.checkpoint(f"nats:{names.stream}:{names.durable}") == 60
    info = consumer_info(names)
    assert (info.num_pending, info.num_ack_pending, info.num_redelivered) == (0, 0, 0)


def test_crash_between_commit_and_ack_records_nothing_twice(
    ledger: Ledger, names: Names, tmp_path: Path
) -> None:
    """Messages committed but never acked are redelivered and counted as duplicates only."""
    publish(names, messages(40))
    config = settings(names, tmp_path, batch_size=40)
    with pytest.raises(Crash):
        consume(ledger, config, CrashAfterCommit)
    assert ledger.position() == 40
    assert consumer_info(names).num_ack_pending == 40
    again = consume(ledger, config)
    assert (again.messages, again.recorded, again.duplicates) == (40, 0, 40)
    assert ledger.position() == 40
    assert consumer_info(names).num_ack_pending == 0


def test_malformed_messages_are_rejected_with_their_location(
    ledger: Ledger, names: Names, tmp_path: Path
) -> None:
    """Bad records go to the rejects file by subject, sequence, field; they are not redelivered."""
    bad_time = {**lead_record(9), "occurred_at": "2025-01-06"}
    publish(names, [
        orjson.dumps(lead_record(1)),                                   # 1: fine
        b"{not json",                                                   # 2: unreadable
        orjson.dumps([lead_record(2), {**lead_record(3), "type": "x"}]),  # 3: array, one bad
        b"\n".join(orjson.dumps(r) for r in (lead_record(4), bad_time)),  # 4: JSON lines, one bad
        b"42",                                                          # 5: not a record
    ])
    config = settings(names, tmp_path)
    summary = consume(ledger, config)
    counts = (summary.recorded, summary.rejected, summary.messages, summary.terminated)
    assert counts == (3, 4, 5, 2)
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    at = f"{names.subject}@{names.stream}"
    assert [(r["where"], r["field"]) for r in rejects] == [
        (f"{at}:2", None), (f"{at}:3[2]", "type"), (f"{at}:4[2]", "occurred_at"), (f"{at}:5", None)]
    assert consume(ledger, config).read == 0
    info = consumer_info(names)
    assert (info.num_ack_pending, info.num_redelivered) == (0, 0)


def refuse_fact(ledger: Ledger, source_id: str, *, refuse: bool) -> None:
    """Make the store itself refuse (or accept again) the insert of one fact, mid-transaction."""
    target = fact_id("test", source_id)
    if ledger.config.backend == "sqlite":
        statements = [f"DROP TRIGGER IF EXISTS refuse_{ledger.table}"]
        if refuse:
            statements.append(
                f"CREATE TRIGGER refuse_{ledger.table} BEFORE INSERT ON {ledger.table} "
                f"WHEN NEW.originator_id = '{target.hex}' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    else:
        statements = [f"DROP TRIGGER IF EXISTS refuse ON {ledger.table}"]
        if refuse:
            schema = ledger.config.schema
            statements += [
                (f"CREATE OR REPLACE FUNCTION {schema}.refuse() RETURNS trigger AS $$ "
                 f"BEGIN IF NEW.originator_id = '{target}'::uuid THEN RAISE EXCEPTION 'refused'; "
                 "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"),
                (f"CREATE TRIGGER refuse BEFORE INSERT ON {ledger.table} FOR EACH ROW "
                 f"EXECUTE FUNCTION {schema}.refuse()")]
    with ledger.recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
        for statement in statements:
            cursor.execute(statement)


def test_a_batch_commits_atomically_and_is_acked_only_after_its_commit(
    ledger: Ledger, names: Names, tmp_path: Path
) -> None:
    """If the store refuses one fact of a batch, none of it lands or is acked; all come later."""
    publish(names, messages(20))
    refuse_fact(ledger, "s13", refuse=True)
    config = settings(names, tmp_path, batch_size=20)
    with pytest.raises(Exception, match=r"refused|write conflicts"):
        consume(ledger, config)
    assert ledger.position() == 0
    assert consumer_info(names).num_ack_pending == 20
    refuse_fact(ledger, "s13", refuse=False)
    summary = consume(ledger, config)
    assert (summary.messages, summary.recorded, summary.duplicates) == (20, 20, 0)
    info = consumer_info(names)
    assert (info.num_ack_pending, info.num_redelivered) == (0, 0)
