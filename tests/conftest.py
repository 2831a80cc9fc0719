"""Fixtures shared by every test: isolation from the developer's environment, and store URLs.

``db_url`` runs a test once per backend: an SQLite file in the test's temporary directory, and
a fresh schema in the local PostgreSQL server (dropped afterwards). When PostgreSQL or NATS is
unreachable the tests that need them are skipped locally, but fail when ``CI=true``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

PG_DSN = os.environ.get("REVLEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(what: str, error: BaseException) -> None:
    """Skip locally, fail in CI, when a service the test needs cannot be reached."""
    message = f"{what} unavailable: {' '.join(str(error).split())}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's ledger settings or write into the working directory."""
    monkeypatch.delenv("REVLEDGER_DB", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL naming a fresh, empty PostgreSQL schema, dropped after the test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        unavailable("PostgreSQL", error)
    try:
        yield f"{PG_DSN}?schema={schema}"
    finally:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL naming an SQLite file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test on each backend: SQLite file, then PostgreSQL schema."""
    return str(request.getfixturevalue(f"{request.param.replace('postgres', 'pg')}_url"))


NATS_URL = os.environ.get("REVLEDGER_TEST_NATS", "nats://127.0.0.1:4222")


@pytest.fixture
def nats_url() -> str:
    """The local NATS JetStream server's URL (skipped locally, failing in CI, when it is down)."""
    import socket  # noqa: PLC0415
    from urllib.parse import urlsplit  # noqa: PLC0415

    parts = urlsplit(NATS_URL)
    try:
        socket.create_connection((parts.hostname, parts.port or 4222), timeout=3).close()
    except OSError as error:
        unavailable("NATS", error)
    return NATS_URL
