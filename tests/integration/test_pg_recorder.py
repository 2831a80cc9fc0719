"""The COPY-based PostgreSQL recorder: eventsourcing's own recorder test cases, and ours.

eventsourcing ships its recorder contracts as ``unittest`` test cases
(``eventsourcing.tests.persistence``); they run here against :class:`CopyProcessRecorder`, as
eventsourcing's own ``tests/persistence_tests/test_postgres.py`` runs them against
``PostgresProcessRecorder`` (that module is not shipped in the wheel, and its helpers in
``eventsourcing.tests.postgres_utils`` import a package that is not shipped either, so the
set-up is written out here). Each test gets a fresh schema in the test database, dropped
afterwards; eventsourcing's helper that terminates every connection on the server is not
used (other processes share the server), only the recorder's own connection is terminated.

Then: a duplicate in a batch writes nothing, the tracking record commits or rolls back with
the events, 5,000 events round-trip byte for byte, and the ledger uses this recorder on
PostgreSQL only. PostgreSQL unreachable: skipped locally, failed when CI=true.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import random
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from threading import Event, Thread
from typing import Any, Literal
from unittest import TestCase

import psycopg
import pytest
from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
    Tracking,
)
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ledger.application import open_ledger
from ledger.pg_recorder import CopyProcessRecorder
from tests.conftest import PG_DSN, unavailable
from tests.factories import stage

pytestmark = pytest.mark.postgres


# Used through the module: pytest collects every unittest.TestCase named in a test module, so
# importing the abstract cases by name would collect them too.
contracts: Any = importlib.import_module("eventsourcing.tests.persistence")

# Maximally long identifiers, as eventsourcing's tests use: the sequence and index names
# PostgreSQL derives from them are truncated, which the id-drawing statement must cope with.
EVENTS_TABLE_NAME = "s" * 50 + "stored_events"
TRACKING_TABLE_NAME = "n" * 42 + "notification_tracking"
assert len(EVENTS_TABLE_NAME) == len(TRACKING_TABLE_NAME) == 63


def admin_connection() -> psycopg.Connection[Any]:
    """An autocommit connection to the test database (skips, or fails in CI, when down)."""
    try:
        return psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        unavailable("PostgreSQL", error)
        raise  # unreachable: unavailable() skips or fails


class FreshSchema(TestCase):
    """A PostgresDatastore on a new, empty schema of the test database.

    Like eventsourcing's ``SetupPostgresDatastore``, which drops and recreates tables in fixed
    schemas instead.
    """

    pool_size = 1
    max_overflow = 0
    max_waiting = 0
    originator_id_type: Literal["uuid", "text"] = "uuid"

    def setUp(self) -> None:
        """Create the schema and the datastore (tables are created by each test's recorder)."""
        super().setUp()
        self.admin = admin_connection()
        self.schema = f"t_{uuid.uuid4().hex[:12]}"
        self.admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        params = conninfo_to_dict(PG_DSN)
        self.datastore = PostgresDatastore(
            dbname=str(params["dbname"]),
            host=str(params.get("host", "127.0.0.1")),
            port=str(params.get("port", "5432")),
            user=str(params.get("user", "postgres")),
            password=str(params.get("password", "")),
            pool_size=self.pool_size,
            max_overflow=self.max_overflow,
            max_waiting=self.max_waiting,
            schema=self.schema,
            originator_id_type=self.originator_id_type,
        )

    def tearDown(self) -> None:
        """Close the pool and drop the schema."""
        self.datastore.close()
        self.admin.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
        )
        self.admin.close()
        super().tearDown()

    def copy_recorder(self) -> CopyProcessRecorder:
        """The recorder under test, with its tables created."""
        recorder = CopyProcessRecorder(
            self.datastore,
            events_table_name=EVENTS_TABLE_NAME,
            tracking_table_name=TRACKING_TABLE_NAME,
        )
        recorder.create_table()
        return recorder

    def terminate_pooled_connection(self) -> None:
        """Terminate the server side of the datastore's (one) pooled connection, only that."""
        assert self.datastore.pool.max_size == 1
        with self.datastore.get_connection() as conn:
            pid = conn.info.backend_pid
        self.admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


class WithTextOriginatorID(FreshSchema):
    """The same cases with ``ORIGINATOR_ID_TYPE=text`` (eventsourcing's variant)."""

    originator_id_type: Literal["uuid", "text"] = "text"

    def new_originator_id(self) -> uuid.UUID | str:
        """Text ids, as eventsourcing's text-originator-id tests use."""
        return "test-" + str(uuid.uuid4())


# --- eventsourcing's recorder contracts ----------------------------------------------------------


class TestCopyProcessRecorder(FreshSchema, contracts.ProcessRecorderTestCase):
    """eventsourcing's ProcessRecorderTestCase (tracking + events), on the COPY recorder."""

    def create_recorder(self) -> CopyProcessRecorder:
        """The recorder under test."""
        return self.copy_recorder()

    def test_retry_insert_events_after_closing_connection(self) -> None:
        """A connection dropped by the server is replaced and the insert retried."""
        recorder = self.create_recorder()
        self.terminate_pooled_connection()
        event = StoredEvent(uuid.uuid4(), 1, "topic1", b"state1")
        assert recorder.insert_events([event], tracking=Tracking("upstream", 1)) == [1]
        assert recorder.max_tracking_id("upstream") == 1


class TestCopyProcessRecorderTextIDs(WithTextOriginatorID, TestCopyProcessRecorder):
    """ProcessRecorderTestCase with text originator ids."""


class TestCopyApplicationRecorder(
    FreshSchema, contracts.ApplicationRecorderTestCase[CopyProcessRecorder]
):
    """eventsourcing's ApplicationRecorderTestCase (notification ids, conflicts, concurrency)."""

    def create_recorder(self) -> CopyProcessRecorder:
        """The recorder under test."""
        return self.copy_recorder()

    def test_insert_subscribe(self) -> None:
        """Subscriptions see what is copied (NOTIFY is sent); run as eventsourcing runs it."""
        self.datastore.pool.open()
        self.datastore.pool.resize(2, 2)
        self.optional_test_insert_subscribe()

    def test_concurrent_no_conflicts(self, initial_position: int = 0) -> None:  # noqa: PT028
        """Ten writers and two readers at once (pool sized as in eventsourcing's test)."""
        self.datastore.pool.open()
        self.datastore.pool.resize(12, 12)
        super().test_concurrent_no_conflicts(initial_position)

    def test_concurrent_throughput(self) -> None:
        """Four writers at once (pool sized as in eventsourcing's test)."""
        self.datastore.pool.open()
        self.datastore.pool.resize(10, 10)
        super().test_concurrent_throughput()

    def test_subscribe_concurrent_reading_and_writing(self) -> None:
        """A subscriber reading while a writer copies batches sees every event, in order."""
        self.datastore.pool.open()
        self.datastore.pool.resize(2, 2)
        recorder = self.create_recorder()
        batches, size = 20, 100
        seen: list[int] = []

        def read(after: int | None) -> None:
            with recorder.subscribe(after) as subscription:
                for notification in subscription:
                    seen.append(notification.id)
                    if len(seen) == batches * size:
                        break

        reader = Thread(target=read, args=(recorder.max_notification_id(),))
        reader.start()
        for _ in range(batches):
            recorder.insert_events(
                [StoredEvent(self.new_originator_id(), 1, "topic1", b"x") for _ in range(size)]
            )
        reader.join(timeout=60)
        assert seen == list(range(1, batches * size + 1))

    def test_insert_lock_timeout_actually_works(self) -> None:
        """The table lock is taken (with POSTGRES_LOCK_TIMEOUT), as eventsourcing checks it."""
        self.datastore.lock_timeout = 1
        self.datastore.pool.open()
        self.datastore.pool.resize(2, 2)
        recorder = self.create_recorder()
        lock_taken, test_ended, timed_out = Event(), Event(), Event()

        def hold_lock() -> None:
            with self.datastore.transaction() as curs:
                first = [StoredEvent(uuid.uuid4(), 1, "t", b"1")]
                recorder._insert_stored_events(curs, first)  # noqa: SLF001 - as eventsourcing's
                lock_taken.set()
                test_ended.wait(timeout=5)

        def wait_for_lock() -> None:
            try:
                with self.datastore.get_connection() as conn:
                    lock_taken.wait(timeout=5)
                    with conn.transaction(), conn.cursor() as curs:
                        second = [StoredEvent(uuid.uuid4(), 1, "t", b"2")]
                        recorder._insert_stored_events(curs, second)  # noqa: SLF001
            except OperationalError as error:
                if "lock timeout" in error.args[0]:
                    timed_out.set()

        threads = [Thread(target=hold_lock, daemon=True), Thread(target=wait_for_lock, daemon=True)]
        for thread in threads:
            thread.start()
        timed_out.wait(timeout=4)
        test_ended.set()
        for thread in threads:
            thread.join(timeout=10)
        assert timed_out.is_set()


class TestCopyApplicationRecorderTextIDs(WithTextOriginatorID, TestCopyApplicationRecorder):
    """ApplicationRecorderTestCase with text originator ids."""


class TestCopyNonInterleavingNotificationIDs(
    FreshSchema, contracts.NonInterleavingNotificationIDsBaseCase
):
    """Two concurrent 1,000-event batches get two separate runs of notification ids."""

    pool_size = 2

    def create_recorder(self) -> CopyProcessRecorder:
        """The recorder under test."""
        return self.copy_recorder()


# --- this recorder's own guarantees --------------------------------------------------------------


@pytest.fixture
def datastore() -> Iterator[PostgresDatastore]:
    """A datastore on a fresh schema (two pooled connections), dropped afterwards."""
    case = FreshSchema()
    case.pool_size = 2
    case.setUp()
    try:
        yield case.datastore
    finally:
        case.tearDown()


@pytest.fixture
def recorder(datastore: PostgresDatastore) -> CopyProcessRecorder:
    """The COPY recorder with its tables created."""
    made = CopyProcessRecorder(
        datastore, events_table_name=EVENTS_TABLE_NAME, tracking_table_name=TRACKING_TABLE_NAME
    )
    made.create_table()
    return made


def event(
    originator_id: uuid.UUID | None = None, version: int = 1, state: bytes = b"{}"
) -> StoredEvent:
    """A stored event (a new stream unless ``originator_id`` is given)."""
    return StoredEvent(originator_id or uuid.uuid4(), version, "ledger.events:StageChanged", state)


def everything(recorder: CopyProcessRecorder) -> list[Any]:
    """Every notification in the table, in order."""
    return list(recorder.select_notifications(start=None, limit=1_000_000))


def test_tables_are_eventsourcings_own(datastore: PostgresDatastore) -> None:
    """The recorder creates exactly the tables, type, index and function the parent creates."""
    ours = CopyProcessRecorder(datastore, events_table_name="e", tracking_table_name="t")
    theirs = PostgresProcessRecorder(datastore, events_table_name="e", tracking_table_name="t")
    assert [s.as_string() for s in ours.sql_create_statements] == [
        s.as_string() for s in theirs.sql_create_statements
    ]


def test_duplicate_inside_a_batch_raises_and_writes_nothing(recorder: CopyProcessRecorder) -> None:
    """A batch naming one (originator, version) twice is refused whole, tracking included."""
    first = recorder.insert_events([event()], tracking=Tracking("src", 1))
    repeated = event()
    batch = [event(), repeated, event(), repeated]
    with pytest.raises(IntegrityError):
        recorder.insert_events(batch, tracking=Tracking("src", 2))
    assert [n.id for n in everything(recorder)] == first
    assert recorder.max_tracking_id("src") == 1
    assert recorder.select_events(repeated.originator_id) == []


def test_event_already_stored_raises_and_writes_nothing(recorder: CopyProcessRecorder) -> None:
    """A batch with one event already in the store is refused whole, tracking included."""
    stored = event()
    recorder.insert_events([stored], tracking=Tracking("src", 1))
    fresh = event()
    with pytest.raises(IntegrityError):
        recorder.insert_events([fresh, stored], tracking=Tracking("src", 2))
    assert len(everything(recorder)) == 1
    assert recorder.max_tracking_id("src") == 1
    assert recorder.select_events(fresh.originator_id) == []


def test_tracking_conflict_writes_no_events(recorder: CopyProcessRecorder) -> None:
    """A checkpoint that does not move forward refuses the batch: no event lands."""
    recorder.insert_events([event()], tracking=Tracking("src", 5))
    for position in (5, 4):
        with pytest.raises(IntegrityError):
            recorder.insert_events([event(), event()], tracking=Tracking("src", position))
    assert len(everything(recorder)) == 1
    assert recorder.max_tracking_id("src") == 5


def test_tracking_and_events_commit_together(recorder: CopyProcessRecorder) -> None:
    """Events and tracking commit together; a failure after the COPY leaves neither."""
    ids = recorder.insert_events([event(), event()], tracking=Tracking("src", 1))
    assert ids == [1, 2]
    assert recorder.max_tracking_id("src") == 1

    original = recorder._copy_stored_events  # noqa: SLF001

    def copy_then_fail(curs: Any, stored_events: Sequence[StoredEvent]) -> list[int]:
        original(curs, stored_events)
        raise RuntimeError("crash after the COPY, before the commit")

    recorder._copy_stored_events = copy_then_fail  # type: ignore[method-assign]  # noqa: SLF001
    with pytest.raises(RuntimeError):
        recorder.insert_events([event(), event()], tracking=Tracking("src", 2))
    del recorder._copy_stored_events  # noqa: SLF001
    assert len(everything(recorder)) == 2
    assert recorder.max_tracking_id("src") == 1


def test_tracking_alone(recorder: CopyProcessRecorder) -> None:
    """A batch with no events still records its checkpoint, and returns no ids (as the parent)."""
    assert recorder.insert_events([], tracking=Tracking("src", 3)) is None
    assert recorder.max_tracking_id("src") == 3
    assert recorder.max_notification_id() is None


def test_5000_events_round_trip_byte_identically(recorder: CopyProcessRecorder) -> None:
    """5,000 events come back exactly, in order, with the ids insert_events returned.

    States are arbitrary bytes (NUL, backslashes, tabs, newlines, invalid UTF-8, empty), and
    topics carry non-ASCII and control characters.
    """
    rng = random.Random(5000)  # noqa: S311 - reproducible test data
    specials = [b"", b"\x00", b"\\", b"\\N", b"\t\n\r", b"\xff\xfe", "é—😀".encode()]
    streams = [uuid.uuid4() for _ in range(2500)]
    events = []
    for index in range(5000):
        state = rng.choice(specials) + os.urandom(rng.randrange(0, 400)) + rng.choice(specials)
        topic = rng.choice(["ledger.events:StageChanged", "tópic\twith\\odd\nchars ✓", ""])
        events.append(StoredEvent(streams[index // 2], 1 + index % 2, topic, state))
    ids = recorder.insert_events(events, tracking=Tracking("src", 5000))
    assert ids == list(range(1, 5001))
    back = everything(recorder)
    assert [n.id for n in back] == ids
    assert [(n.originator_id, n.originator_version, n.topic, n.state) for n in back] == [
        (e.originator_id, e.originator_version, e.topic, e.state) for e in events
    ]
    assert all(type(n.state) is bytes for n in back)
    assert recorder.select_events(streams[7]) == events[14:16]


def test_ids_are_the_sequences_even_when_not_consecutive(
    datastore: PostgresDatastore, recorder: CopyProcessRecorder
) -> None:
    """Drawn ids that are not consecutive (a sequence stepping by 3) are returned as stored."""
    recorder.insert_events([event()])
    with datastore.transaction(commit=True) as curs:
        curs.execute(
            "SELECT pg_get_serial_sequence(format('%%I.%%I', %s::text, %s::text), "
            "'notification_id') AS seq",
            (datastore.schema, EVENTS_TABLE_NAME),
        )
        row = curs.fetchone()
        assert row is not None
        curs.execute(sql.SQL("ALTER SEQUENCE {} INCREMENT BY 3").format(sql.SQL(row["seq"])))
    ids = recorder.insert_events([event() for _ in range(4)])
    assert ids == [4, 7, 10, 13]
    assert [n.id for n in everything(recorder)] == [1, *ids]


def test_copy_and_parent_recorders_share_one_table(
    datastore: PostgresDatastore, recorder: CopyProcessRecorder
) -> None:
    """A ledger written by eventsourcing's recorder keeps working with this one.

    Both write one table, in one sequence of notification ids, and each reads what the other
    wrote.
    """
    parent = PostgresProcessRecorder(
        datastore, events_table_name=EVENTS_TABLE_NAME, tracking_table_name=TRACKING_TABLE_NAME
    )
    parent.create_table()
    old = [event(state=b"old") for _ in range(3)]
    assert parent.insert_events(old, tracking=Tracking("src", 1)) == [1, 2, 3]
    new = [event(state=b"new") for _ in range(3)]
    assert recorder.insert_events(new, tracking=Tracking("src", 2)) == [4, 5, 6]
    with pytest.raises(IntegrityError):
        recorder.insert_events([old[0]])
    assert [n.state for n in parent.select_notifications(None, 10)] == [b"old"] * 3 + [b"new"] * 3
    assert parent.max_tracking_id("src") == 2


def test_missing_table_is_a_programming_error(datastore: PostgresDatastore) -> None:
    """Copying into a table that does not exist raises eventsourcing's ProgrammingError."""
    unmade = CopyProcessRecorder(datastore, events_table_name="nope", tracking_table_name="t")
    with pytest.raises(ProgrammingError):
        unmade.insert_events([event()])


# --- the ledger on this recorder -----------------------------------------------------------------


def test_ledger_uses_the_copy_recorder_on_postgres_only(pg_url: str, sqlite_url: str) -> None:
    """PostgreSQL ledgers write with COPY; SQLite ledgers keep eventsourcing's recorder."""
    pg = open_ledger(pg_url)
    lite = open_ledger(sqlite_url)
    try:
        assert isinstance(pg.recorder, CopyProcessRecorder)
        assert pg.recorder.events_table_name == "ledger_events"
        assert pg.recorder.tracking_table_name == "ledger_tracking"
        assert not isinstance(lite.recorder, CopyProcessRecorder)
    finally:
        pg.close()
        lite.close()


def test_ledger_batch_with_checkpoint_round_trips(pg_url: str) -> None:
    """Facts recorded with a checkpoint read back equal; duplicates are found by existing()."""
    ledger = open_ledger(pg_url)
    try:
        facts = [stage(f"L{i}", "mql", f"s{i}", "2025-01-01T00:00:00Z") for i in range(3000)]
        result = ledger.record(facts, checkpoint=("file", 3000))
        assert len(result.recorded) == 3000
        assert ledger.checkpoint("file") == 3000
        assert [f for _, f in ledger.facts()] == facts
        assert ledger.existing([facts[5].id, uuid.uuid4(), facts[2999].id]) == {
            facts[5].id,
            facts[2999].id,
        }
        again = ledger.record([*facts[2990:], stage("L9", "sal", "new", "2025-01-02T00:00:00Z")])
        assert (len(again.recorded), len(again.duplicates)) == (1, 10)
        assert ledger.position() == 3001
    finally:
        ledger.close()


def test_concurrent_ledgers_record_each_fact_once(pg_url: str) -> None:
    """Two ledgers recording overlapping batches at once record each fact exactly once.

    COPY conflicts surface as IntegrityError, and the ledger re-checks and retries the batch.
    """
    open_ledger(pg_url).close()  # create the tables before the race
    facts = [stage(f"L{i}", "mql", f"s{i}", "2025-01-01T00:00:00Z") for i in range(600)]
    totals: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def load(order: list[int]) -> None:
        ledger = open_ledger(pg_url)
        try:
            start.wait()
            recorded = duplicates = 0
            for begin in range(0, len(order), 50):
                result = ledger.record([facts[i] for i in order[begin : begin + 50]])
                recorded += len(result.recorded)
                duplicates += len(result.duplicates)
            totals.append((recorded, duplicates))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            ledger.close()

    forward = list(range(600))
    threads = [Thread(target=load, args=(forward,)), Thread(target=load, args=(forward[::-1],))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sum(r for r, _ in totals) == 600
    assert sum(d for _, d in totals) == 600
    ledger = open_ledger(pg_url)
    try:
        ids = [f.id for _, f in ledger.facts()]
        assert sorted(ids) == sorted(f.id for f in facts)
    finally:
        ledger.close()


def test_recorded_at_survives_the_copy(pg_url: str) -> None:
    """The fact's ledger time (eventsourcing's timestamp) is stored and read back exactly."""
    ledger = open_ledger(pg_url)
    try:
        when = datetime(2025, 3, 5, 14, 22, 1, 123456, tzinfo=UTC)
        one = stage("L1", "mql", "s1", "2025-01-01T00:00:00Z")
        stamped = dataclasses.replace(one, timestamp=when)
        ledger.record([stamped])
        assert [f.recorded_at for _, f in ledger.facts()] == [when]
    finally:
        ledger.close()
