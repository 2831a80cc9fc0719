"""Database URL parsing: one URL picks the backend and its settings."""

from __future__ import annotations

import pytest

from ledger.errors import ConfigurationError
from ledger.storage import DEFAULT_URL, parse_url, resolve_url


def test_explicit_url_wins_over_environment() -> None:
    """--db takes precedence over REVLEDGER_DB."""
    assert resolve_url("sqlite:///a.db", {"REVLEDGER_DB": "sqlite:///b.db"}) == "sqlite:///a.db"


def test_environment_wins_over_default() -> None:
    """REVLEDGER_DB is used when --db is absent."""
    assert resolve_url(None, {"REVLEDGER_DB": "sqlite:///b.db"}) == "sqlite:///b.db"


def test_default_is_a_local_sqlite_file() -> None:
    """With nothing configured the ledger is ./revledger.db."""
    assert resolve_url(None, {}) == DEFAULT_URL
    assert parse_url(DEFAULT_URL).env["SQLITE_DBNAME"] == "revledger.db"


def test_absolute_sqlite_path() -> None:
    """Four slashes mean an absolute path."""
    assert parse_url("sqlite:////var/lib/ledger.db").env["SQLITE_DBNAME"] == "/var/lib/ledger.db"


def test_postgres_url_parts() -> None:
    """Host, port, user, password, database and schema come from the URL."""
    config = parse_url("postgresql://ops:s3cret@db.internal:6543/revenue?schema=emea")
    assert config.backend == "postgres"
    assert config.env["POSTGRES_HOST"] == "db.internal"
    assert config.env["POSTGRES_PORT"] == "6543"
    assert config.env["POSTGRES_USER"] == "ops"
    assert config.env["POSTGRES_PASSWORD"] == "s3cret"  # noqa: S105 - a made-up test password
    assert config.env["POSTGRES_DBNAME"] == "revenue"
    assert config.schema == "emea"
    assert "s3cret" not in config.display
    assert config.sqlalchemy_url == "postgresql+psycopg://ops:s3cret@db.internal:6543/revenue"


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://", "postgresql://host/",
                                 "postgresql://h/db?schema=a-b"])
def test_unsupported_urls_are_refused_with_an_example(url: str) -> None:
    """A URL that names no usable store is a ConfigurationError, not a crash later."""
    with pytest.raises(ConfigurationError):
        parse_url(url)


@pytest.mark.parametrize("schema", ["EMEA", "Emea", "emea_Q1"])
def test_a_schema_with_capitals_is_refused_with_its_lower_case_spelling(schema: str) -> None:
    """PostgreSQL folds unquoted names to lower case: the URL must spell the schema that way."""
    with pytest.raises(ConfigurationError, match=rf"use \?schema={schema.lower()}$"):
        parse_url(f"postgresql://h/db?schema={schema}")


def test_a_non_ascii_schema_is_refused() -> None:
    """Identifiers beyond ASCII are not plain identifiers for every statement that names them."""
    with pytest.raises(ConfigurationError, match="plain identifier"):
        parse_url("postgresql://h/db?schema=ventes_é")
