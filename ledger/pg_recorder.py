"""A PostgreSQL process recorder that writes stored events with binary ``COPY``.

eventsourcing's :class:`~eventsourcing.postgres.PostgresProcessRecorder` sends a batch as one
text-encoded array of a composite type (``INSERT ... SELECT ... FROM unnest(%s::type[])``);
psycopg escapes every event into that text in Python, which costs far more than the write
itself. :class:`CopyProcessRecorder` keeps everything else of the parent — the table layout,
the tracking table, reads, subscriptions, error translation — and replaces only the insert of
stored events with ``COPY ... FROM STDIN (FORMAT BINARY)``, whose rows psycopg formats in C.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier


class CopyProcessRecorder(PostgresProcessRecorder):
    """eventsourcing's PostgreSQL process recorder, inserting stored events with binary COPY.

    Semantics kept from the parent:

    - **one transaction**: the tracking record (when given) and the batch's events commit or
      roll back together, and the tracking record is written first, as the parent does (so
      writers of either kind take their locks in the same order);
    - **conflicts**: a second event at an existing (originator_id, originator_version) fails
      the whole ``COPY`` with a unique violation, which the datastore translates into
      eventsourcing's :class:`~eventsourcing.persistence.IntegrityError`; nothing of the batch
      (nor its tracking record) is written;
    - **notification ids in commit order**: ``COPY`` takes the same ``LOCK TABLE ... IN
      EXCLUSIVE MODE`` (with the same ``lock_timeout``) as the parent before any id is drawn.
      A sequence is not transactional, so without the lock two writers could draw interleaved
      ids and commit in the opposite order, and a reader tailing the log (``select
      notifications after N``) would pass over ids that commit later. The lock conflicts only
      with writers (readers take ACCESS SHARE), is held until commit, and is also what every
      other eventsourcing writer of the same table takes, so this recorder and the parent can
      write one table concurrently. It costs one statement per batch, not per event;
    - **notification ids returned**: :meth:`insert_events` returns the ids of the inserted
      events, in the order given. They are drawn from the table's own ``notification_id``
      sequence while the lock is held, in one statement, and written explicitly by the
      ``COPY`` (which has no ``RETURNING``); the events get exactly the ids a plain
      ``INSERT`` would have given them;
    - **no gap from a refused batch**: the ``COPY`` runs in a savepoint, so when the table
      refuses it (a fact it already holds: the ledger writes a batch of likely new facts
      without asking first), the lock is still held and the drawn ids are given back to the
      sequence before the transaction rolls back, provided no one drew after them;
    - **NOTIFY** on the table's channel, as the parent does, so subscriptions wake up.

    The parent's optional database function (``POSTGRES_ENABLE_DB_FUNCTIONS``) is not used:
    this recorder always copies.
    """

    COPY_COLUMNS = ("originator_id", "originator_version", "topic", "state", "notification_id")

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        """The parent's recorder and tables, plus the ``COPY`` and id-drawing statements."""
        super().__init__(
            datastore,
            events_table_name=events_table_name,
            tracking_table_name=tracking_table_name,
        )
        schema = Identifier(self.datastore.schema)
        table = Identifier(self.events_table_name)
        self.copy_events_statement = SQL(
            "COPY {schema}.{table} ({columns}) FROM STDIN (FORMAT BINARY)"
        ).format(
            schema=schema,
            table=table,
            columns=SQL(", ").join(Identifier(name) for name in self.COPY_COLUMNS),
        )
        # Draws n ids from the column's sequence. Usually they are consecutive (the lock keeps
        # other inserts out), and one row carries first, last and count; the full list is
        # returned only when they are not (a sequence with CACHE > 1, or a nextval() called
        # from outside).
        self.draw_notification_ids_statement = SQL(
            "WITH seq AS ("
            "    SELECT pg_get_serial_sequence(format('%%I.%%I', %s::text, %s::text),"
            "                                  'notification_id')::regclass AS oid"
            "), drawn AS ("
            "    SELECT nextval((SELECT oid FROM seq)) AS id"
            "    FROM generate_series(1, %s::bigint)"
            ") "
            "SELECT min(id) AS first, max(id) AS last, count(*) AS n, "
            "CASE WHEN max(id) - min(id) + 1 = count(*) THEN NULL "
            "ELSE array_agg(id ORDER BY id) END AS ids "
            "FROM drawn"
        )
        # Gives back the ids a refused COPY drew, so that a batch refused because it held a
        # fact the table already has leaves no gap in the ids. Only while no one else drew
        # after them: the sequence's last value must still be the last id drawn.
        self.give_back_notification_ids_statement = SQL(
            "WITH seq AS ("
            "    SELECT pg_get_serial_sequence(format('%%I.%%I', %s::text, %s::text),"
            "                                  'notification_id')::regclass AS oid"
            ") "
            "SELECT setval(oid, %s::bigint, false) FROM seq "
            "WHERE pg_sequence_last_value(oid) = %s::bigint"
        )
        self.originator_id_pg_type = (
            "uuid" if self.datastore.originator_id_type == "uuid" else "text"
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Write the tracking record (``tracking=``) and copy the events, in one transaction.

        Returns the notification ids of the events (None when there are none), like the parent.
        Connection and lock-timeout failures are retried, as the parent retries them.
        """
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._insert_events(curs, stored_events, **kwargs)  # the tracking record
            if not stored_events:
                return None
            return self._copy_stored_events(curs, stored_events)

    def _insert_stored_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **_: Any,
    ) -> None:
        """Lock, notify and copy, in the caller's transaction (the parent's hook, kept)."""
        if stored_events:
            self._copy_stored_events(curs, stored_events)

    def _copy_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent]
    ) -> list[int]:
        """Take the table lock, notify, draw ids, and ``COPY`` the rows; returns the ids.

        The statements before the ``COPY`` go in one pipeline (one round trip instead of
        four); the id-drawing one comes after the lock, so ids are drawn with the lock held.
        """
        count = len(stored_events)
        with curs.connection.pipeline():
            self._lock_table(curs)
            self._notify_channel(curs)
            curs.execute(
                self.draw_notification_ids_statement,
                (self.datastore.schema, self.events_table_name, count),
                prepare=True,
            )
        ids = self._drawn_ids(curs, count)
        try:
            with curs.connection.transaction():  # a savepoint: the lock outlives a refusal
                self._copy_rows(curs, stored_events, ids)
        except psycopg.IntegrityError:
            if ids == list(range(ids[0], ids[-1] + 1)):
                curs.execute(
                    self.give_back_notification_ids_statement,
                    (self.datastore.schema, self.events_table_name, ids[0], ids[-1]),
                    prepare=True,
                )
            raise
        return ids

    def _copy_rows(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], ids: list[int]
    ) -> None:
        """``COPY`` the events with their notification ids."""
        uuid_ids = self.originator_id_pg_type == "uuid"
        with curs.copy(self.copy_events_statement) as copy:
            copy.set_types([self.originator_id_pg_type, "int8", "text", "bytea", "int8"])
            write_row = copy.write_row
            for event, notification_id in zip(stored_events, ids, strict=True):
                originator_id = event.originator_id
                if uuid_ids != isinstance(originator_id, uuid.UUID):
                    originator_id = self._originator_id(originator_id)
                write_row(
                    (
                        originator_id,
                        event.originator_version,
                        event.topic,
                        event.state,
                        notification_id,
                    )
                )

    def _drawn_ids(self, curs: Cursor[DictRow], count: int) -> list[int]:
        """The ids the drawing statement (just executed on ``curs``) drew, ascending."""
        row = curs.fetchone()
        if row is None or row["n"] != count:
            msg = f"could not draw {count} notification ids for {self.events_table_name}"
            raise ProgrammingError(msg)
        if row["ids"] is not None:
            return [int(i) for i in row["ids"]]
        return list(range(row["first"], row["last"] + 1))

    def _originator_id(self, value: uuid.UUID | str) -> uuid.UUID | str:
        """The originator id as the column's binary dumper needs it (UUID, or str for text)."""
        if self.originator_id_pg_type == "uuid":
            return value if isinstance(value, uuid.UUID) else uuid.UUID(value)
        return value if isinstance(value, str) else str(value)
