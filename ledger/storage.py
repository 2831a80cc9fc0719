"""One database URL selects the store: ``sqlite:///path.db`` (default) or ``postgresql://...``.

The URL comes from ``--db``, else ``REVLEDGER_DB``, else ``sqlite:///revledger.db``; it is read
once, when the ledger is opened (:func:`resolve_url`), never at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from ledger.errors import ConfigurationError

DEFAULT_URL = "sqlite:///revledger.db"
ENV_VAR = "REVLEDGER_DB"
# The ledger's events table on each backend (eventsourcing's SQLite default; on PostgreSQL,
# named after the application), which the projection reads stored states from.
LEDGER_EVENTS = {"sqlite": "stored_events", "postgres": "ledger_events"}


@dataclass(frozen=True)
class StoreConfig:
    """A parsed database URL: which backend, and the settings eventsourcing needs for it."""

    url: str
    backend: str  # "sqlite" or "postgres"
    env: dict[str, str]
    schema: str | None = None  # PostgreSQL schema (``?schema=name``), None for the default

    @property
    def sqlalchemy_url(self) -> str:
        """The same database as an SQLAlchemy URL (psycopg 3 driver for PostgreSQL)."""
        if self.backend == "sqlite":
            return f"sqlite:///{self.env['SQLITE_DBNAME']}"
        rest = self.url.split("://", 1)[1].split("?", 1)[0]
        return f"postgresql+psycopg://{rest}"

    @property
    def display(self) -> str:
        """The URL without its password, for messages."""
        parts = urlsplit(self.url)
        if parts.password:
            return self.url.replace(f":{parts.password}@", ":***@")
        return self.url


def resolve_url(url: str | None, environ: dict[str, str] | None = None) -> str:
    """Pick the database URL: the explicit one, else ``REVLEDGER_DB``, else the SQLite default."""
    environ = dict(os.environ) if environ is None else environ
    return url or environ.get(ENV_VAR) or DEFAULT_URL


def parse_url(url: str) -> StoreConfig:
    """Translate a database URL into eventsourcing persistence settings."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if parts.netloc:
            msg = f"database URL {url!r}: use sqlite:///relative.db or sqlite:////absolute.db"
            raise ConfigurationError(msg)
        path = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
        if not path:
            raise ConfigurationError(
                f"database URL {url!r} names no file; e.g. sqlite:///ledger.db"
            )
        if path != ":memory:":
            path = str(Path(path))
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
        }
        return StoreConfig(url=url, backend="sqlite", env=env)
    if parts.scheme in {"postgresql", "postgres", "postgresql+psycopg"}:
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise ConfigurationError(f"database URL {url!r} names no database; e.g. .../revledger")
        schema = parse_qs(parts.query).get("schema", [None])[0]
        if schema is not None and not (schema.isidentifier() and schema.isascii()):
            raise ConfigurationError(f"database URL {url!r}: schema must be a plain identifier")
        if schema is not None and schema != schema.lower():
            # PostgreSQL folds unquoted names to lower case, and not every statement quotes them.
            raise ConfigurationError(
                f"database URL {url!r}: schema must be lower case; use ?schema={schema.lower()}"
            )
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_LOCK_TIMEOUT": "30",
            "POSTGRES_POOL_SIZE": "2",
        }
        if schema:
            env["POSTGRES_SCHEMA"] = schema
        return StoreConfig(url=url, backend="postgres", env=env, schema=schema)
    msg = (
        f"database URL {url!r} is not supported; use sqlite:///file.db or postgresql://user@host/db"
    )
    raise ConfigurationError(msg)
