"""SQLAlchemy engines on the ledger's database, with real transactions on both backends.

Python's sqlite3 driver does not open a transaction before DDL, which would make the shadow
swap non-atomic; the engine therefore issues ``BEGIN`` itself (SQLAlchemy's documented recipe),
``BEGIN IMMEDIATE`` for writers so that two catch-ups serialise instead of deadlocking.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from ledger.storage import StoreConfig


def create_engine(config: StoreConfig, *, writer: bool = False) -> sa.Engine:
    """An engine on the ledger's database; ``writer`` takes SQLite's write lock up front."""
    if config.backend != "sqlite":
        return sa.create_engine(config.sqlalchemy_url, pool_pre_ping=True)
    engine = sa.create_engine(config.sqlalchemy_url, connect_args={"timeout": 30})
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below rule
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql(begin)

    return engine


def driver_mark(dialect: sa.Dialect) -> str:
    """The driver's positional parameter mark, for SQL handed to it directly."""
    return "?" if dialect.paramstyle == "qmark" else "%s"
