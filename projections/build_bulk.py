"""Bulk writing for the rebuild: plain row tuples handed straight to the database driver.

A rebuild writes millions of rows into empty ``__shadow`` tables. Going through SQLAlchemy's
``insert()`` with one dict per row costs more than deriving the row; here rows stay tuples (in the
column order of :data:`projections.store.ROW_COLUMNS`) and are written with SQLite's
``executemany`` or PostgreSQL's ``COPY``. The shadow tables are created without their secondary
indexes, which are built once the rows are in (a sort instead of one B-tree insert per row and
index). Their primary keys are the order the rebuild writes in (``rl_fact``'s the ledger position,
``rl_family``'s the subject), so the load appends to their B-trees; nothing is looked up by a
fact's id until its index is built (:mod:`projections.build_scan`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from projections import store  # a module: store imports rollup, which imports this
from projections.schema import Tables

if TYPE_CHECKING:
    from projections.store import Row

SQLITE_CACHE_KIB = 65_536  # page cache of the writer while it loads (default: 2 MiB)
VARIABLES = 8192  # SQLite: parameters per multi-row INSERT (SQLite's own limit: 32,766)
# The rows of these tables are sorted by their primary key before they are written, so that a
# batch lands in the key's B-tree in order; rl_fact's come in key (ledger) order already.
SORTED = {"family": itemgetter(1, 2, 0)}  # (root_id, kind, subject) by (kind, subject, root_id)


def create_bare(conn: sa.Connection, t: Tables) -> None:
    """Create the tables of ``t`` with their primary keys but without secondary indexes."""
    for table in t.by_name.values():
        conn.execute(CreateTable(table))


def create_indexes(conn: sa.Connection, t: Tables, names: tuple[str, ...] | None = None) -> None:
    """Build the secondary indexes of the tables ``names`` (default: every table of ``t``)."""
    for name in names if names is not None else tuple(t.by_name):
        for index in t[name].indexes:
            index.create(conn)


class Bulk:
    """Rows waiting to be written to one set of tables, by table name."""

    def __init__(self, t: Tables, conn: sa.Connection | None = None) -> None:
        """Buffer rows for the tables of ``t``, to be written through connections like ``conn``."""
        self.t = t
        names = [name for name in store.ROW_COLUMNS if name in t.by_name]
        self.rows: dict[str, list[Row]] = {name: [] for name in names}
        self._statements: dict[str, str] = {}
        self.per_statement: dict[str, int] = {}  # SQLite: rows per multi-row INSERT
        if conn is not None and conn.dialect.name == "sqlite":
            driver: Any = conn.connection.driver_connection
            limit = min(VARIABLES, driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
            self.per_statement = {
                name: max(1, limit // len(store.ROW_COLUMNS[name])) for name in self.rows
            }

    def __len__(self) -> int:
        """How many rows are waiting."""
        return sum(map(len, self.rows.values()))

    def take(self, *, everything: bool = True) -> dict[str, list[Row]]:
        """The waiting rows, by table, handed over (and no longer waiting here).

        Unless ``everything``, a table's last rows too few to fill a multi-row ``INSERT`` wait
        for the next batch.
        """
        taken: dict[str, list[Row]] = {}
        for name, rows in self.rows.items():
            count = len(rows)
            if not everything and name in self.per_statement:
                count -= count % self.per_statement[name]
            if count:
                taken[name] = rows[:count]
                del rows[:count]
        return taken

    def write(self, conn: sa.Connection, batch: dict[str, list[Row]] | None = None) -> None:
        """Write ``batch`` (default: every waiting row) in ``conn``'s transaction.

        The families are sorted by their key (:data:`SORTED`): a batch's rows land in the
        primary key's B-tree in order, each page visited once, not once per row.
        """
        for name, rows in (self.take() if batch is None else batch).items():
            if not rows:
                continue
            if name in SORTED:
                rows.sort(key=SORTED[name])
            if conn.dialect.name == "postgresql":
                self._copy(conn, name, rows)
            else:
                self._insert(conn, name, rows)

    def _insert(self, conn: sa.Connection, name: str, rows: list[Row]) -> None:
        """SQLite: multi-row ``INSERT`` statements of ``per_statement`` rows, the rest one by one.

        One statement per row (``executemany``) takes the interpreter lock back after every row,
        and a thread deriving meanwhile holds it for up to a switch interval each time; a
        statement of a thousand rows or more keeps SQLite's work off the lock. The same few
        statements are reused (a prepared statement costs ~120 bytes per parameter).
        """
        size = self.per_statement.get(name, 1)
        whole = len(rows) - len(rows) % size
        if whole:
            statement = self._statement(conn, name, size)
            for start in range(0, whole, size):
                conn.exec_driver_sql(
                    statement, tuple(chain.from_iterable(rows[start : start + size]))
                )
        if whole < len(rows):
            conn.exec_driver_sql(self._statement(conn, name, 1), rows[whole:])

    def _target(self, conn: sa.Connection, name: str) -> str:
        return target(conn, self.t[name], store.ROW_COLUMNS[name])

    def _statement(self, conn: sa.Connection, name: str, count: int) -> str:
        key = f"{name}*{count}"
        if key not in self._statements:
            row = f"({', '.join('?' * len(store.ROW_COLUMNS[name]))})"
            into = self._target(conn, name)  # quoted names from the table metadata
            values = ", ".join([row] * count)
            self._statements[key] = f"INSERT INTO {into} VALUES {values}"  # noqa: S608
        return self._statements[key]

    def _copy(self, conn: sa.Connection, name: str, rows: list[Row]) -> None:
        copy_rows(conn, self.t[name], store.ROW_COLUMNS[name], rows)


def target(conn: sa.Connection, table: sa.Table, columns: Sequence[str]) -> str:
    """``table (column, ...)``, quoted, for a statement handed to the driver."""
    quote = conn.dialect.identifier_preparer
    return f"{quote.format_table(table)} ({', '.join(quote.quote(c) for c in columns)})"


def copy_rows(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[Row]
) -> None:
    """PostgreSQL's ``COPY`` of ``rows`` (tuples in ``columns`` order) into ``table``.

    Binary when every column's type is known, text otherwise. Binary spares the text escaping
    of byte columns (the roll-ups' packed sums).
    """
    types = [_PG_TYPES.get(type(table.c[c].type)) for c in columns]
    binary = all(types)
    driver: Any = conn.connection.driver_connection
    statement = f"COPY {target(conn, table, columns)} FROM STDIN" + (
        " (FORMAT BINARY)" if binary else ""
    )
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        if binary:
            copy.set_types(types)
        write = copy.write_row
        for row in rows:
            write(row)


_PG_TYPES: dict[type[sa.types.TypeEngine[Any]], str] = {
    sa.BigInteger: "int8",
    sa.Integer: "int4",
    sa.Boolean: "bool",
    sa.LargeBinary: "bytea",
    sa.String: "text",
}  # the PostgreSQL type whose binary form COPY sends for a column of each type


@contextmanager
def loading(conn: sa.Connection) -> Iterator[None]:
    """Session settings for a bulk load into tables nobody reads yet, restored afterwards.

    SQLite: no fsync per commit (a crash can only lose the shadow tables, which the next rebuild
    drops anyway; the swap runs with the usual setting) and a larger page cache. PostgreSQL:
    commits do not wait for the WAL flush.
    """
    if conn.dialect.name == "sqlite":
        # Outside any transaction (SQLite refuses to change the safety level inside one): on
        # the driver's connection, which is in autocommit mode (projections.database).
        driver: Any = conn.connection.driver_connection
        before = [
            f"PRAGMA {pragma}={driver.execute(f'PRAGMA {pragma}').fetchone()[0]}"
            for pragma in ("synchronous", "cache_size")
        ]
        driver.execute("PRAGMA synchronous=OFF")
        driver.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        try:
            yield
        finally:
            conn.rollback()
            for statement in before:
                driver.execute(statement)
        return
    conn.exec_driver_sql("SET synchronous_commit TO off")
    conn.commit()
    try:
        yield
    finally:
        conn.rollback()
        conn.exec_driver_sql("RESET synchronous_commit")
        conn.commit()
