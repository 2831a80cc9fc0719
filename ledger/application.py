"""The ledger application: records facts idempotently, in atomic batches, and reads them back.

Recording a batch:

1. facts repeated inside the batch, and facts whose stream already exists in the store, are
   duplicates (reported, not recorded);
2. corrections must name a fact the ledger holds (or one earlier in the same batch), and an
   amendment must leave its target a valid fact;
3. the remaining facts are written in one transaction. If another process wrote one of them in
   the meantime the store's primary key refuses the whole transaction, and the batch is
   re-checked and retried, so concurrent writers neither lose nor duplicate anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar, cast

from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    PersistenceError,
    ProcessRecorder,
    StoredEvent,
    Tracking,
)

from ledger.codec import FactMapper, fact_to_record, parse_fact
from ledger.errors import CorrectionTargetMissing, InvalidFact, StoreUnavailable
from ledger.events import Fact, FactAmended, FactRetracted, fact_id
from ledger.storage import LEDGER_EVENTS, StoreConfig, parse_url, resolve_url

MAX_CONFLICT_RETRIES = 20
CORRECTIONS = (FactRetracted, FactAmended)
KNOWN_TARGETS = 4096  # correction targets remembered by a ledger (see Ledger._target)


def psycopg_errors() -> type[Exception]:
    """The base class of psycopg's errors (connection failures surface as these)."""
    import psycopg  # noqa: PLC0415

    return psycopg.Error


READ_PAGE = 5000


class Encoded(NamedTuple):
    """A fact that is not a correction, already encoded: its stored event's four fields.

    A parsing process (:mod:`adapters.parse_process`) hands facts over in this form: the bytes
    it encoded cost far less to pass between processes than the fact object, and recording
    needs only these. A recorder reads exactly these attributes of a stored event, so one is
    written as it is. Corrections are always passed as facts, since recording checks them
    against their targets.
    """

    originator_id: uuid.UUID
    originator_version: int
    topic: str
    state: bytes


Entry = TypeVar("Entry", Fact, Fact | Encoded)


@dataclass
class BatchResult(Generic[Entry]):
    """What happened to one batch: facts recorded, and facts that were already in the ledger."""

    recorded: list[Entry] = field(default_factory=list)
    duplicates: list[Entry] = field(default_factory=list)
    held: int = 0  # how many of the duplicates the store held (the others repeat the batch)


class Ledger(Application[uuid.UUID]):
    """The revenue ledger: an append-only store of facts, one stream per fact."""

    name = "Ledger"

    def __init__(self, config: StoreConfig, *, create: bool = True) -> None:
        """Open the store that ``config`` names; ``create`` makes the tables when missing."""
        self.config = config
        self._targets: dict[uuid.UUID, Fact] = {}
        self._expect_new = False  # whether the next batch's facts are likely all new (record)
        if config.backend == "sqlite" and not create:
            path = config.env["SQLITE_DBNAME"]
            if path != ":memory:" and not Path(path).exists():
                msg = f"no ledger at {path}; create one with 'revledger --db {config.url} init'"
                raise StoreUnavailable(msg)
        env = {**config.env, "CREATE_TABLE": "y" if create else "n"}
        try:
            if config.backend == "postgres":
                with preflight(config, create=create) as exists:
                    # Holding the set-up lock: concurrent first opens never race on DDL.
                    env["CREATE_TABLE"] = "y" if create and not exists else "n"
                    super().__init__(env=env)
            else:
                super().__init__(env=env)
        except (PersistenceError, OSError, psycopg_errors()) as error:
            raise StoreUnavailable(self._describe(error)) from None
        if not create and not self._has_tables():
            msg = f"{config.display} holds no ledger; run 'revledger --db URL init' first"
            raise StoreUnavailable(msg)

    def construct_recorder(self) -> ProcessRecorder:
        """A process recorder: its tracking records hold each source's checkpoint.

        On PostgreSQL it is :class:`~ledger.pg_recorder.CopyProcessRecorder` (eventsourcing's
        recorder, same tables, writing events with binary COPY), named and created exactly as
        eventsourcing's factory would; SQLite uses eventsourcing's own recorder.
        """
        if self.config.backend != "postgres":
            return self.factory.process_recorder()
        from eventsourcing.postgres import PostgresFactory  # noqa: PLC0415

        from ledger.pg_recorder import CopyProcessRecorder  # noqa: PLC0415

        factory = self.factory
        assert isinstance(factory, PostgresFactory)
        prefix = factory.env.name.lower()
        recorder = CopyProcessRecorder(
            factory.datastore,
            events_table_name=LEDGER_EVENTS["postgres"],
            tracking_table_name=f"{prefix}_tracking",
        )
        if factory.env_create_table():
            recorder.create_table()
        return recorder

    def construct_mapper(self) -> FactMapper:
        """Facts use their own mapper (orjson, typed by the fact class)."""
        return FactMapper()

    @property
    def table(self) -> str:
        """The (schema-qualified, on PostgreSQL) name of the events table."""
        name = str(self.recorder.events_table_name)  # type: ignore[attr-defined]
        return f"{self.config.schema}.{name}" if self.config.schema else name

    def _describe(self, error: BaseException) -> str:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"cannot open the ledger at {self.config.display}: {first}"

    def _has_tables(self) -> bool:
        if self.config.backend == "sqlite":
            sql = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
            params: Any = (self.table,)
        else:
            sql = "SELECT to_regclass(%s) IS NOT NULL"
            params = (self.table,)
        with self.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return bool(row and next(iter(row.values() if isinstance(row, dict) else row)))

    # --- writing ---------------------------------------------------------------------------------

    def existing(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """The subset of ``ids`` whose facts the store already holds."""
        if not ids:
            return set()
        if self.config.backend == "postgres":
            return self._existing_postgres(ids)
        found: set[uuid.UUID] = set()
        with self.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            for start in range(0, len(ids), 900):  # SQLite allows 999 parameters per statement
                chunk = ids[start : start + 900]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT originator_id FROM {self.table} WHERE originator_id IN ({marks})"  # noqa: S608
                cursor.execute(sql, [i.hex for i in chunk])
                for row in cursor.fetchall():
                    value = row["originator_id"]
                    found.add(value if isinstance(value, uuid.UUID) else uuid.UUID(value))
        return found

    def _existing_postgres(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """:meth:`existing` on PostgreSQL: one statement, ids sent as a binary ``uuid[]``.

        A single SELECT needs no explicit transaction (the pooled connection is in autocommit
        mode), which saves the BEGIN and ROLLBACK round trips. The binary array costs psycopg a
        fraction of the text one (no per-id formatting and escaping), and there is no need to
        split it: PostgreSQL has no parameter limit for one array.
        """
        from psycopg import sql  # noqa: PLC0415 - only PostgreSQL needs it

        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        table = sql.Identifier(datastore.schema, self.recorder.events_table_name)  # type: ignore[attr-defined]
        # Naming the version too lets PostgreSQL use the primary key; on the originator id
        # alone it chose a sequential scan, growing with the table.
        query = sql.SQL(
            "SELECT originator_id FROM {} WHERE originator_id = ANY(%b) AND originator_version = 1"
        ).format(table)
        with datastore.get_connection() as conn, conn.cursor(binary=True) as cursor:
            cursor.execute(query, (list(ids),), prepare=True)
            return {row["originator_id"] for row in cursor.fetchall()}

    def get(self, source: str, source_id: str) -> Fact | None:
        """The fact that ``source`` calls ``source_id``, or None."""
        stored = self.recorder.select_events(fact_id(source, source_id), limit=1)
        return self.mapper.to_domain_event(stored[0]) if stored else None  # type: ignore[return-value]

    def check_correction(
        self, fact: Fact, earlier: dict[uuid.UUID, Fact] | dict[uuid.UUID, Fact | Encoded]
    ) -> None:
        """Raise unless ``fact`` (a correction) names a known fact and leaves it valid.

        ``earlier``: the facts before it in its batch, by id; a correction may name one of them.
        """
        if not isinstance(fact, CORRECTIONS):
            return
        target_id = fact_id(fact.target_source, fact.target_source_id)
        found = earlier.get(target_id)
        target = self.decode(cast("StoredEvent", found)) if isinstance(found, Encoded) else found
        target = target or self._target(target_id)
        if target is None:
            msg = (
                f"names {fact.target_source}/{fact.target_source_id}, which the ledger does "
                "not hold; record that fact first"
            )
            raise CorrectionTargetMissing(msg, "target_source_id")
        if isinstance(fact, FactAmended):
            if not fact.changes:
                raise InvalidFact("an amendment must change at least one field", "changes")
            identity = {"type", "source", "source_id", "recorded_at", target.subject_field}
            forbidden = identity & set(fact.changes)
            if forbidden:
                msg = f"cannot amend {min(forbidden)}; retract the fact and record a new one"
                raise InvalidFact(msg, "changes")
            merged = {**fact_to_record(target), **fact.changes}
            try:
                parse_fact(merged)
            except InvalidFact as error:
                raise InvalidFact(error.reason, f"changes.{error.field}") from None

    def _target(self, target_id: uuid.UUID) -> Fact | None:
        """The stored fact a correction names, or None.

        Found facts are remembered (up to :data:`KNOWN_TARGETS`): a recorded fact never changes
        or goes away, so the answer stays true, and a correction checked by the load pipeline
        and again by :meth:`record` costs one query, not two. Misses are not remembered, since
        another writer may record the target at any time.
        """
        target = self._targets.get(target_id)
        if target is None:
            stored = self.recorder.select_events(target_id, limit=1)
            if not stored:
                return None
            target = self.decode(stored[0])
            if len(self._targets) >= KNOWN_TARGETS:
                self._targets.clear()
            self._targets[target_id] = target
        return target

    def checkpoint(self, source_key: str) -> int:
        """The position up to which ``source_key`` has been loaded (0 if never)."""
        recorder: ProcessRecorder = self.recorder  # type: ignore[assignment]
        return recorder.max_tracking_id(source_key) or 0

    def partition(self, batch: list[Entry], *, look_up: bool = True) -> BatchResult[Entry]:
        """Split a batch into new facts and duplicates (of the batch itself, or of the store).

        Without ``look_up``, the store is not asked: only repeats inside the batch are found.
        """
        result: BatchResult[Entry] = BatchResult()
        unique: dict[uuid.UUID, Entry] = {}
        for fact in batch:
            if fact.originator_id in unique:  # originator_id is fact.id, without the property
                result.duplicates.append(fact)
            else:
                unique[fact.originator_id] = fact
        present = self.existing(list(unique)) if look_up else set()
        for key, fact in unique.items():
            (result.duplicates if key in present else result.recorded).append(fact)
        result.held = len(present)
        return result

    def record(
        self, facts: Iterable[Entry], checkpoint: tuple[str, int] | None = None
    ) -> BatchResult[Entry]:
        """Record a batch atomically; facts already in the ledger are returned as duplicates.

        ``checkpoint`` = (source key, position) is written in the same transaction (an
        eventsourcing tracking record), so a load resumed after a crash starts exactly after
        the last committed batch. Positions of one source key must increase. The batch may
        hold facts already encoded (:class:`Encoded`), which are written as they are.

        After a batch in which the store held none of the facts, the next is written without
        asking the store first (a load of new facts saves one query per batch): the store's
        primary key still refuses a fact it holds, which fails the whole transaction, and the
        batch is then partitioned against the store and written again, as after a conflict
        with another writer. Batches are asked about first again until one holds no fact the
        store had.
        """
        batch = list(facts)
        tracking = Tracking(*checkpoint) if checkpoint else None
        for attempt in range(MAX_CONFLICT_RETRIES):
            look_up = attempt > 0 or not self._expect_new
            result = self.partition(batch, look_up=look_up)
            self._expect_new = not result.held
            seen: dict[uuid.UUID, Fact | Encoded] = {}
            for fact in result.recorded:
                if isinstance(fact, CORRECTIONS):  # the only facts check_correction checks
                    self.check_correction(fact, seen)
                seen[fact.originator_id] = fact
            if not result.recorded and tracking is None:
                return result
            try:
                # The mapper and recorder directly: Application.save() would re-inspect every
                # event, and EventStore.put() builds a notification object per event that no
                # caller reads.
                stored = list(map(self._stored, result.recorded))
                self.recorder.insert_events(stored, tracking=tracking)
            except IntegrityError:
                # The store held some of these facts (not asked first), another writer
                # recorded some of them, or moved this checkpoint on.
                if tracking:
                    moved_on = self.checkpoint(tracking.application_name)
                    tracking = tracking if moved_on < tracking.notification_id else None
                continue
            except OperationalError as error:
                raise StoreUnavailable(self._describe(error)) from None
            return result
        msg = f"gave up after {MAX_CONFLICT_RETRIES} write conflicts with concurrent writers"
        raise StoreUnavailable(msg)

    def _stored(self, entry: Fact | Encoded) -> StoredEvent:
        """The stored event of a fact, or of one already encoded."""
        if isinstance(entry, Encoded):
            return cast("StoredEvent", entry)  # the same four attributes
        return self.mapper.to_stored_event(entry)

    # --- reading ---------------------------------------------------------------------------------

    def position(self) -> int:
        """The id of the newest notification (0 for an empty ledger)."""
        return int(self.recorder.max_notification_id() or 0)

    def read(self, after: int = 0, limit: int = READ_PAGE) -> list[tuple[int, Fact]]:
        """Up to ``limit`` facts recorded after notification ``after``, in recording order."""
        notifications = self.recorder.select_notifications(
            after + 1, limit, inclusive_of_start=True
        )
        return [(n.id, self.decode(n)) for n in notifications]

    def decode(self, stored: StoredEvent) -> Fact:
        """Turn a stored event (or notification) back into a fact."""
        return self.mapper.to_domain_event(stored)  # type: ignore[return-value]

    def facts(self, after: int = 0, page: int = READ_PAGE) -> Iterator[tuple[int, Fact]]:
        """Every fact recorded after ``after``, in recording order, read page by page."""
        while True:
            rows = self.read(after, page)
            if not rows:
                return
            yield from rows
            after = rows[-1][0]


SETUP_LOCK = 0x7265766C  # pg_advisory_lock key held while a ledger's tables are set up


@contextmanager
def preflight(config: StoreConfig, *, create: bool) -> Iterator[bool]:
    """Connect to PostgreSQL once (for a precise error), holding the set-up lock.

    Creates the URL's schema if asked, and yields whether the ledger's tables already exist;
    the lock is held until the caller has finished creating them, so two processes opening a
    new ledger at the same time never run the same DDL concurrently.
    """
    import psycopg  # noqa: PLC0415 - only PostgreSQL needs it
    from psycopg import sql  # noqa: PLC0415

    env = config.env
    try:
        conn = psycopg.connect(
            dbname=env["POSTGRES_DBNAME"],
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"] or None,
            connect_timeout=int(env["POSTGRES_CONNECT_TIMEOUT"]),
            autocommit=True,
        )
    except psycopg.Error as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        msg = f"cannot open the ledger at {config.display}: {reason}"
        raise StoreUnavailable(msg) from None
    with conn:
        if create:
            conn.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK,))
            if config.schema:
                statement = sql.SQL("CREATE SCHEMA IF NOT EXISTS {}")
                conn.execute(statement.format(sql.Identifier(config.schema)))
        table = f"{config.schema or 'public'}.{LEDGER_EVENTS['postgres']}"
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
        yield bool(row and row[0])


def open_ledger(url: str | None = None, *, create: bool = True) -> Ledger:
    """Open the ledger named by ``url`` (or ``REVLEDGER_DB``, or the SQLite default)."""
    return Ledger(parse_url(resolve_url(url)), create=create)
