"""The rebuild's roll-ups on two cores: a second process fills half of them meanwhile.

Building the roll-ups is Python work over the derived tables the rebuild has just loaded, and
its two halves read and write different tables: :func:`projections.rollup.build_leads` (the
roll-ups kept per lead, from the stay table) and :func:`projections.rollup.build_rest`
(:data:`~projections.rollup.REST_TABLES`, from the stays, opportunities and deals). On a machine
with two or more cores, and a ledger of at least :data:`MIN_FACTS` facts, :class:`SplitBuild`
runs ``build_rest`` in a child process while the rebuild runs ``build_leads``:

- on PostgreSQL the child writes the shadow tables itself, in its own transaction, committed
  before the rebuild swaps them in;
- on SQLite, whose database has one writer at a time, the child reads the database (a WAL
  snapshot taken after the load committed) and writes its tables into a scratch database file
  beside it; the rebuild then copies them in (:meth:`SplitBuild.finish`, one
  ``INSERT … SELECT`` per table, in key order) and deletes the file.

The rows are those the one-process build writes (the same functions fill the same tables from
the same rows). A failure in the child stops the rebuild before the swap, so the live tables
stay as they were; leaving early (an error or an interrupt in the rebuild) stops the child. The
child is a fresh interpreter (``python -c``), as the ingest's parse process is: it neither forks
the rebuild's process (which holds connections and threads) nor re-imports its main script. Its
settings arrive on its standard input, so a password in the database URL never shows in the
process list.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from ledger.errors import RevledgerError
from ledger.processes import cores, last_line, start_child
from ledger.storage import StoreConfig, parse_url
from projections import rollup
from projections.database import create_engine
from projections.schema import Tables, tables

MIN_FACTS = 200_000  # smaller ledgers build their roll-ups in one process (a child costs ~0.5 s)
SIDE = "rl_side"  # the scratch database's name in the SQLite connections that attach it


class SplitBuildFailed(RevledgerError):
    """The process building half of the roll-ups stopped without finishing them."""


def wanted(config: StoreConfig, facts: int) -> bool:
    """Whether a rebuild of ``facts`` facts on ``config``'s database should split its roll-ups.

    Only with a second core, and on SQLite only for a database file (a child cannot reach an
    in-memory database).
    """
    if cores() < 2 or facts < MIN_FACTS:
        return False
    return config.backend != "sqlite" or _on_disk(config)


def _on_disk(config: StoreConfig) -> bool:
    name = config.env["SQLITE_DBNAME"]
    return name != ":memory:" and not name.startswith("file:") and Path(name).is_file()


def scratch_path(config: StoreConfig, generation: int) -> Path | None:
    """SQLite: the scratch database of the build of ``generation`` (beside the ledger's file)."""
    if config.backend != "sqlite":
        return None
    name = Path(config.env["SQLITE_DBNAME"])
    return name.with_name(f"{name.name}.rollups-{generation}.tmp")


def side_tables(shadow: Tables, schema: str | None, generation: int) -> Tables:
    """``shadow`` (of ``generation``), with the tables of ``REST_TABLES`` in ``schema``.

    ``schema`` None: ``shadow`` itself. Otherwise the same definitions (names, keys, column
    order) in the attached scratch database; every other table is read where it is.
    """
    if schema is None:
        return shadow
    side = tables(schema, shadow=True, generation=generation)
    return Tables(shadow.metadata, shadow.by_name | {n: side[n] for n in rollup.REST_TABLES})


class SplitBuild:
    """A child process filling the shadow tables of ``build_rest``; use as a context manager.

    ``finish`` waits for it (and, on SQLite, copies its tables in); leaving the context stops
    the child if it still runs and removes the scratch file.
    """

    def __init__(self, config: StoreConfig, generation: int) -> None:
        """Build the roll-ups of the shadow tables of ``generation`` in ``config``'s database."""
        self.config = config
        self.generation = generation
        self.scratch = scratch_path(config, generation)
        self._child: subprocess.Popen[bytes] | None = None
        self._errors: IO[bytes] | None = None

    def __enter__(self) -> Self:
        """Start the child."""
        self._remove_scratch()  # left by a build that stopped before removing it
        self._errors = tempfile.TemporaryFile()
        self._child = start_child(
            "import projections.build_split as s; s.child()",
            errors=self._errors,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        settings = {
            "url": self.config.url,
            "generation": self.generation,
            "scratch": None if self.scratch is None else str(self.scratch),
        }
        assert self._child.stdin is not None
        try:
            with self._child.stdin as stdin:
                stdin.write(json.dumps(settings).encode())
        except BrokenPipeError:  # the child died at once: finish() reports why
            pass
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Stop the child if it still runs; remove the scratch file."""
        if self._child is not None:
            if self._child.poll() is None:
                self._child.kill()
            self._child.wait()
        if self._errors is not None:
            self._errors.close()
        self._remove_scratch()

    def finish(self, engine: sa.Engine, shadow: Tables) -> None:
        """Wait for the child; on SQLite, copy its tables into ``shadow`` (one transaction).

        Raises :class:`SplitBuildFailed` if the child failed.
        """
        assert self._child is not None
        assert self._errors is not None
        code = self._child.wait()
        if code != 0:
            msg = (
                f"the process building the roll-ups stopped (exit code {code})"
                f"{last_line(self._errors)}; the live tables are unchanged, run 'revledger "
                "rebuild' again"
            )
            raise SplitBuildFailed(msg)
        if self.scratch is None:
            return
        with engine.connect() as conn:
            driver: Any = conn.connection.driver_connection
            driver.execute(f"ATTACH DATABASE ? AS {SIDE}", (str(self.scratch),))
            try:
                _copy_in(conn, shadow, side_tables(shadow, SIDE, self.generation))
                conn.commit()
            finally:
                conn.rollback()
                driver.execute(f"DETACH DATABASE {SIDE}")

    def _remove_scratch(self) -> None:
        if self.scratch is not None:
            for path in (self.scratch, Path(f"{self.scratch}-journal")):
                with suppress(FileNotFoundError):
                    path.unlink()


def _copy_in(conn: sa.Connection, shadow: Tables, side: Tables) -> None:
    """Insert every row of ``side``'s tables into ``shadow``'s, in key order."""
    for name in rollup.REST_TABLES:
        source, target = side[name], shadow[name]
        columns = [source.c[c.name] for c in target.columns]
        query = sa.select(*columns).order_by(*source.primary_key.columns)
        conn.execute(sa.insert(target).from_select([c.name for c in target.columns], query))


def child() -> None:
    """The child's main: build the roll-ups of ``build_rest`` as its standard input says.

    Exits 1 with the error's one line on standard error if that fails. Ignores SIGINT: an
    interrupt is the rebuild's to handle, and the rebuild stops the child.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = json.loads(sys.stdin.buffer.read())
    try:
        build_side(
            parse_url(settings["url"]),
            settings["generation"],
            None if settings["scratch"] is None else Path(settings["scratch"]),
        )
    except Exception as error:  # noqa: BLE001 - every failure is the rebuild's to report
        sys.stderr.write(f"{type(error).__name__}: {error}".splitlines()[0] + "\n")
        sys.exit(1)


def build_side(config: StoreConfig, generation: int, scratch: Path | None) -> None:
    """Fill the tables of ``build_rest`` of the shadow tables of ``generation``.

    ``scratch`` (SQLite): into that new database file, attached, rather than the shadow tables.
    """
    shadow = tables(config.schema, shadow=True, generation=generation)
    target = side_tables(shadow, SIDE if scratch is not None else None, generation)
    engine = create_engine(config)  # not the writer: on SQLite it only reads the ledger's file
    try:
        with engine.connect() as conn:
            if scratch is not None:
                driver: Any = conn.connection.driver_connection
                driver.execute(f"ATTACH DATABASE ? AS {SIDE}", (str(scratch),))
                driver.execute(f"PRAGMA {SIDE}.journal_mode=OFF")  # a scratch file: no journal
                driver.execute(f"PRAGMA {SIDE}.synchronous=OFF")
                for name in rollup.REST_TABLES:
                    conn.execute(CreateTable(target[name]))
            rollup.build_rest(conn, target)
            conn.commit()
    finally:
        engine.dispose()
