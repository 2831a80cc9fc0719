"""Run the funnel projection: incremental catch-up, follow, and rebuild with an atomic swap.

Exactly once: each page of ledger notifications is applied and the new position written to
``rl_tracking`` in the same database transaction, so a crash at any point leaves either the
whole page or none of it. ``rebuild`` fills ``__shadow`` tables in one pass over the ledger
(each fact decoded once, each subject derived once from the facts in memory, rows written in bulk:
:mod:`projections.build_scan`, :mod:`projections.build_bulk`) and renames them over the live tables
in one transaction, so readers see the previous complete build until the swap. See docs/metrics.md,
"Projection".
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from functools import partial

import sqlalchemy as sa

from ledger.application import Ledger
from ledger.errors import StoreUnavailable
from projections import build_split, ranks, rollup
from projections.build_bulk import Bulk, create_bare, create_indexes, loading
from projections.build_pipe import Writer, read_ahead
from projections.build_scan import BUDGET, Scan, rederive_spoiled
from projections.database import create_engine
from projections.gc_pause import paused_gc
from projections.schema import LATER, ROLLUPS, TABLES, Tables, tables, tracking_table
from projections.store import read_stored, rederive, store_facts

NAME = "funnel"
PAGE = 1000
READ_PAGE = 5000  # facts read per query by a rebuild
FLUSH_ROWS = 50_000  # a rebuild writes (and commits) once this many rows are waiting
FACTS = ("fact", "family")  # the tables indexed before a rebuild re-reads spoiled subjects
ANALYZE_AFTER = 50_000  # a catch-up this large refreshes the planner's statistics
Progress = Callable[[int], None]


def _ignore(_count: int) -> None:
    """A progress callback that shows nothing."""


def _quiet(_step: str) -> None:
    """A step callback that shows nothing."""


class Projection:
    """The funnel projection of one ledger, in that ledger's database."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        page: int = PAGE,
        budget: int = BUDGET,
        split: bool | None = None,
    ) -> None:
        """Bind to ``ledger``; tables are created on first use.

        ``page``: facts per catch-up transaction; ``budget``: facts a rebuild keeps in memory;
        ``split``: whether a rebuild builds half of its roll-ups in a second process (None: when
        the machine and the ledger's size make it worth it, :func:`build_split.wanted`).
        """
        self.ledger = ledger
        self.schema = ledger.config.schema
        self.page = page
        self.budget = budget
        self.split = split
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
        self._prepare()
        return self._apply(progress, stop)

    def _apply(self, progress: Progress, stop: threading.Event | None) -> int:
        """Apply the facts after the tracked position, one page per transaction."""
        done = 0
        while stop is None or not stop.is_set():
            with self.writer.begin() as conn:
                tracked = self._tracked(conn, lock=True)
                assert tracked is not None
                page = read_stored(self.ledger, tracked[0], self.page)
                if not page:  # caught up: rank the cells the pages changed (projections.ranks)
                    ranks.refresh(conn, self.live)
                    break
                touched = store_facts(conn, self.live, page)
                rederive(conn, self.live, touched)
                self._track(conn, position=page[-1].position)
            done += len(page)
            progress(len(page))
        if done >= ANALYZE_AFTER:
            with self.writer.begin() as conn:
                self._analyze(conn, self.live)
        return done

    def check(self) -> None:
        """Create the tables if new, and refuse outdated ones (:class:`StoreUnavailable`).

        A command may call it before it starts showing progress, so that an outdated projection
        costs the user one error line and nothing else; a catch-up calls it anyway.
        """
        self.ensure()
        with self.writer.begin() as conn:
            for name in LATER:
                self.live[name].create(conn, checkfirst=True)
        self._check_current()

    def _prepare(self) -> None:
        """:meth:`check`, then add what an older build left out.

        What an older build lacks and a catch-up can fill from the rest: the week and quarter
        grains of ``rl_roll_dur``, and ``rl_roll_rank`` (created by :meth:`check`), filled when
        the catch-up has applied every page (:meth:`_apply`).
        """
        self.check()
        with self.writer.begin() as conn:
            rollup.add_missing_grains(conn, self.live)

    def _check_current(self) -> None:
        """Refuse to follow into tables an older revledger built without some of today's columns.

        A table or column the projection lacks would otherwise surface as an SQL error half-way
        through a catch-up; a rebuild creates every table as it is today.
        """
        with self.reader.connect() as conn:
            inspector = sa.inspect(conn)
            names = set(inspector.get_table_names(schema=self.schema))
            wanted = [t for t in self.live.by_name.values() if t.name in names]
            found = inspector.get_multi_columns(
                schema=self.schema, filter_names=[t.name for t in wanted]
            )
        present = {table: {c["name"] for c in columns} for (_, table), columns in found.items()}
        missing = [t.name for t in self.live.by_name.values() if t.name not in names]
        missing += [
            f"{t.name}.{c.name}" for t in wanted for c in t.columns if c.name not in present[t.name]
        ]
        if missing:
            msg = f"the projection lacks {', '.join(sorted(missing))}; run 'revledger rebuild' once"
            raise StoreUnavailable(msg)

    def follow(
        self, stop: threading.Event, interval: float = 1.0, progress: Progress = _ignore
    ) -> int:
        """Catch up, then keep polling for new facts every ``interval`` seconds until ``stop``.

        The tables are checked once, not at every poll (the catalogue query is not free).
        """
        self._prepare()
        done = 0
        while not stop.is_set():
            done += self._apply(progress, stop)
            stop.wait(interval)
        return done

    # --- rebuild ---------------------------------------------------------------------------------

    def rebuild(
        self,
        progress: Progress = _ignore,
        subjects: Progress = _ignore,
        steps: Callable[[str], None] = _quiet,
    ) -> int:
        """Rebuild into shadow tables, swap them in, then catch up; returns the position.

        The shadow tables are filled by :meth:`_load` (one pass over the ledger), indexed, their
        roll-ups built (half of them in a second process, :mod:`projections.build_split`, on a
        large ledger), and renamed over the live ones in one transaction. ``progress`` is told
        about facts read, ``subjects`` about subjects derived, ``steps`` about each step after
        the pass over the ledger (what it is doing now, as a phrase).
        """
        self.ensure()
        with self.reader.connect() as conn:
            tracked = self._tracked(conn)
        generation = (tracked[1] if tracked else 0) + 1
        shadow = tables(self.schema, shadow=True, generation=generation)
        with self.writer.begin() as conn:
            shadow.metadata.drop_all(conn)
            create_bare(conn, shadow)
        end = self.ledger.position()
        self._load(shadow, end, progress, subjects, steps)
        postgres = self.writer.dialect.name == "postgresql"
        if postgres:  # statistics for the roll-ups built from them next (they follow the rename)
            steps("analyzing and vacuuming the loaded tables")
            self._vacuum(shadow, shadow.by_name)
        split = (
            self.split if self.split is not None else build_split.wanted(self.ledger.config, end)
        )
        steps("building the roll-ups" + (" in two processes" if split else ""))
        if split:  # half of the roll-ups in a second process meanwhile (build_split)
            with build_split.SplitBuild(self.ledger.config, generation) as side:
                with self.writer.begin() as conn:
                    rollup.build_leads(conn, shadow)
                side.finish(self.writer, shadow)
        with self.writer.begin() as conn:
            if not split:
                rollup.build(conn, shadow)
            steps("swapping the new tables in")
            self._swap(conn, shadow)
            self._track(conn, position=end, generation=generation)
        steps("analyzing the new tables")
        if postgres:
            self._vacuum(self.live, ROLLUPS)
        else:
            with self.writer.begin() as conn:  # SQLite's statistics do not follow a rename
                self._analyze(conn, self.live)
        steps("catching up with the facts recorded meanwhile")
        self.catch_up(progress)
        return self.position()

    def _load(
        self,
        shadow: Tables,
        end: int,
        progress: Progress,
        subjects: Progress,
        steps: Callable[[str], None] = _quiet,
    ) -> None:
        """Fill the shadow tables with the facts up to ``end`` and build their indexes.

        One pass over the ledger (:meth:`_scan`), then the corrections it could not place and
        the spoiled subjects again, from the shadow tables (:mod:`projections.build_scan`), then
        the secondary indexes.
        """
        with self.writer.connect() as conn, loading(conn), paused_gc():
            scan = self._scan(conn, shadow, end, progress, subjects)
            steps("indexing the loaded tables")
            create_indexes(conn, shadow, FACTS)
            spoiled = scan.spoiled | store_facts(conn, shadow, scan.pending)  # as catch-up does
            out = Bulk(shadow, conn)
            for count in rederive_spoiled(conn, shadow, out, spoiled):
                out.write(conn)
                subjects(count)
            later = (*FACTS, *rollup.INDEXED_WHEN_FILLED)
            create_indexes(conn, shadow, tuple(n for n in shadow.by_name if n not in later))
            conn.commit()

    def _scan(
        self, conn: sa.Connection, shadow: Tables, end: int, progress: Progress, subjects: Progress
    ) -> Scan:
        """The pass over the ledger up to ``end``; returns the scan (what it spoiled, and left).

        Read, derived and written on three threads (:mod:`projections.build_pipe`); rows are
        written and committed in batches of about ``FLUSH_ROWS``.
        """
        out = Bulk(shadow, conn)
        with Writer(conn) as writer:

            def flush(*, everything: bool = True) -> None:
                batch = out.take(everything=everything)

                def write(c: sa.Connection) -> None:
                    out.write(c, batch)
                    c.commit()

                writer.submit(write)

            scan = Scan(out, self.budget, facts=end)
            derived = 0
            read = partial(read_stored, self.ledger, limit=READ_PAGE, stop=end)
            for page in read_ahead(read, end):
                scan.add(page)
                if len(out) >= FLUSH_ROWS:
                    flush(everything=False)
                progress(len(page))
                if scan.subjects > derived:
                    subjects(scan.subjects - derived)
                    derived = scan.subjects
            scan.finish()
            flush()
        if scan.subjects > derived:
            subjects(scan.subjects - derived)
        return scan

    def _analyze(self, conn: sa.Connection, t: Tables) -> None:
        """Refresh the planner's statistics of the tables ``t``.

        Freshly bulk-loaded tables have none, and without them PostgreSQL picks nested-loop plans
        that make some reports a hundred times slower.
        """
        quote = conn.dialect.identifier_preparer
        for table in t.by_name.values():
            conn.exec_driver_sql(f"ANALYZE {quote.format_table(table)}")

    def _vacuum(self, t: Tables, names: Iterable[str]) -> None:
        """PostgreSQL: ``ANALYZE``, then ``VACUUM``, the freshly loaded tables ``names`` of ``t``.

        A bulk load leaves the tables without planner statistics (PostgreSQL then picks
        nested-loop plans, a hundred times slower, for the roll-ups built from them) and without
        visibility map or hint bits: no scan can be index-only, and the first reports to read
        each page would write it. Both run outside a transaction, after the load's commit, and
        in that order: the load committed without waiting for the WAL flush, VACUUM cannot mark a
        page all-visible before the commits of its rows are flushed, and the first ANALYZE
        commits synchronously, which flushes the WAL up to it.
        """
        with self.writer.connect() as conn:
            autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
            quote = conn.dialect.identifier_preparer
            listed = [quote.format_table(t[name]) for name in names]
            for command, table in itertools.product(("ANALYZE", "VACUUM"), listed):
                autocommit.exec_driver_sql(f"{command} {table}")

    def _swap(self, conn: sa.Connection, shadow: Tables) -> None:
        quote = conn.dialect.identifier_preparer
        for name in TABLES:
            live, built = self.live[name], shadow[name]
            live.drop(conn, checkfirst=True)
            statement = (
                f"ALTER TABLE {quote.format_table(built)} RENAME TO {quote.quote(live.name)}"
            )
            conn.exec_driver_sql(statement)
