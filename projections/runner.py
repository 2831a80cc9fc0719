"""Run the funnel projection: incremental catch-up, follow, and rebuild with an atomic swap.

Exactly once: each page of ledger notifications is applied and the new position written to
``rl_tracking`` in the same database transaction, so a crash at any point leaves either the
whole page or none of it. ``rebuild`` fills ``__shadow`` tables (facts first, then every
subject derived once, in a bulk path) and renames them over the live tables in one transaction,
so readers see the previous complete build until the swap. See docs/metrics.md, "Projection".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from itertools import groupby
from typing import Any

import sqlalchemy as sa

from ledger.application import Ledger
from ledger.errors import StoreUnavailable
from projections import rollup
from projections.database import create_engine
from projections.schema import TABLES, Tables, tables, tracking_table
from projections.store import families_of, rederive, store_facts, subject_rows

NAME = "funnel"
PAGE = 1000
FLUSH_ROWS = 20_000
ANALYZE_AFTER = 50_000  # a catch-up this large refreshes the planner's statistics
Progress = Callable[[int], None]


def _ignore(_count: int) -> None:
    """A progress callback that shows nothing."""


class Projection:
    """The funnel projection of one ledger, in that ledger's database."""

    def __init__(self, ledger: Ledger, *, page: int = PAGE) -> None:
        """Bind to ``ledger``; tables are created on first use."""
        self.ledger = ledger
        self.schema = ledger.config.schema
        self.page = page
        self.reader = create_engine(ledger.config)
        self.writer = create_engine(ledger.config, writer=True)
        self.tracking = tracking_table(self.schema)
        self.live = tables(self.schema)

    def close(self) -> None:
        """Release the database connections."""
        self.reader.dispose()
        self.writer.dispose()

    # --- tracking --------------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the tracking table and the (empty) live tables if they do not exist yet."""
        with self.writer.begin() as conn:
            self.tracking.create(conn, checkfirst=True)
            if self._tracked(conn) is None:
                self.live.metadata.create_all(conn)
                conn.execute(sa.insert(self.tracking).values(name=NAME, position=0, generation=0))

    def _tracked(self, conn: sa.Connection, *, lock: bool = False) -> tuple[int, int] | None:
        query = sa.select(self.tracking.c.position, self.tracking.c.generation).where(
            self.tracking.c.name == NAME
        )
        row = conn.execute(query.with_for_update() if lock else query).first()
        return (int(row.position), int(row.generation)) if row else None

    def _track(self, conn: sa.Connection, **values: int) -> None:
        conn.execute(sa.update(self.tracking).where(self.tracking.c.name == NAME).values(**values))

    def position(self) -> int:
        """The last ledger notification applied to the live tables (0 if never projected)."""
        with self.reader.connect() as conn:
            if not sa.inspect(conn).has_table(self.tracking.name, schema=self.schema):
                return 0
            tracked = self._tracked(conn)
        return tracked[0] if tracked else 0

    # --- incremental -----------------------------------------------------------------------------

    def catch_up(self, progress: Progress = _ignore, stop: threading.Event | None = None) -> int:
        """Apply every ledger fact recorded since the last position; returns how many."""
        self.ensure()
        self._check_current()
        done = 0
        while stop is None or not stop.is_set():
            with self.writer.begin() as conn:
                tracked = self._tracked(conn, lock=True)
                assert tracked is not None
                page = self.ledger.read(tracked[0], self.page)
                if not page:
                    break
                touched = store_facts(conn, self.live, (fact for _, fact in page))
                rederive(conn, self.live, touched)
                self._track(conn, position=page[-1][0])
            done += len(page)
            progress(len(page))
        if done >= ANALYZE_AFTER:
            self._analyze()
        return done

    def _check_current(self) -> None:
        """Refuse to follow into tables an older revledger built without some of today's tables."""
        with self.reader.connect() as conn:
            present = set(sa.inspect(conn).get_table_names(schema=self.schema))
        missing = sorted(t.name for t in self.live.by_name.values() if t.name not in present)
        if missing:
            msg = f"the projection lacks {', '.join(missing)}; run 'revledger rebuild' once"
            raise StoreUnavailable(msg)

    def follow(
        self, stop: threading.Event, interval: float = 1.0, progress: Progress = _ignore
    ) -> int:
        """Catch up, then keep polling for new facts every ``interval`` seconds until ``stop``."""
        done = 0
        while not stop.is_set():
            done += self.catch_up(progress, stop)
            stop.wait(interval)
        return done

    # --- rebuild ---------------------------------------------------------------------------------

    def rebuild(self, progress: Progress = _ignore, subjects: Progress = _ignore) -> int:
        """Rebuild from scratch into shadow tables, swap them in, then catch up; returns the position.

        ``progress`` is told about facts read, ``subjects`` about subjects derived.
        """
        self.ensure()
        with self.reader.connect() as conn:
            tracked = self._tracked(conn)
        generation = (tracked[1] if tracked else 0) + 1
        shadow = tables(self.schema, shadow=True, generation=generation)
        with self.writer.begin() as conn:
            shadow.metadata.drop_all(conn)
            shadow.metadata.create_all(conn)
        end = self.ledger.position()
        position = 0
        while position < end:
            page = [(n, f) for n, f in self.ledger.read(position, self.page * 5) if n <= end]
            with self.writer.begin() as conn:
                store_facts(conn, shadow, (fact for _, fact in page))
            position = page[-1][0]
            progress(len(page))
        self._derive_all(shadow, subjects)
        with self.writer.begin() as conn:
            rollup.build(conn, shadow)
            self._swap(conn, shadow)
            self._track(conn, position=end, generation=generation)
        self._analyze()
        self.catch_up(progress)
        return self.position()

    def _analyze(self) -> None:
        """Refresh the planner's statistics: freshly bulk-loaded tables have none, and without
        them PostgreSQL picks nested-loop plans that make some reports a hundred times slower.
        """
        quote = self.writer.dialect.identifier_preparer
        with self.writer.begin() as conn:
            for table in self.live.by_name.values():
                conn.exec_driver_sql(f"ANALYZE {quote.format_table(table)}")

    def _derive_all(self, shadow: Tables, progress: Progress) -> None:
        fact, family = shadow["fact"], shadow["family"]
        query = (
            sa.select(
                family.c.kind,
                family.c.subject,
                fact.c.root_id,
                fact.c.fact_id,
                fact.c.topic,
                fact.c.state,
            )
            .join(fact, fact.c.root_id == family.c.root_id)
            .order_by(family.c.kind, family.c.subject, fact.c.fact_id)
        )
        buffer: dict[str, list[dict[str, Any]]] = {}
        with self.reader.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=5000).execute(query)
            for (kind, subject), rows in groupby(result, key=lambda r: (r.kind, r.subject)):
                for table, derived in subject_rows(kind, subject, families_of(rows)).items():
                    buffer.setdefault(table, []).extend(derived)
                progress(1)
                if sum(map(len, buffer.values())) >= FLUSH_ROWS:
                    self._flush(shadow, buffer)
        self._flush(shadow, buffer)

    def _flush(self, shadow: Tables, buffer: dict[str, list[dict[str, Any]]]) -> None:
        with self.writer.begin() as conn:
            for table, rows in buffer.items():
                if rows:
                    conn.execute(sa.insert(shadow[table]), rows)
        buffer.clear()

    def _swap(self, conn: sa.Connection, shadow: Tables) -> None:
        quote = conn.dialect.identifier_preparer
        for name in TABLES:
            live, built = self.live[name], shadow[name]
            live.drop(conn, checkfirst=True)
            statement = (
                f"ALTER TABLE {quote.format_table(built)} RENAME TO {quote.quote(live.name)}"
            )
            conn.exec_driver_sql(statement)
