"""The read side: open the live projection tables and run report queries against them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from ledger.storage import StoreConfig
from projections.database import create_engine
from projections.errors import ReportError
from projections.ranks import empty as ranks_empty
from projections.rollup import holds_grain
from projections.runner import NAME
from projections.schema import LATER, ROLLUPS, Tables, tables, tracking_table
from projections.window import NONE_GROUP, Window


class Reader:
    """Read-only access to the live projection of one database."""

    def __init__(self, config: StoreConfig) -> None:
        """Bind to the database ``config`` names (nothing is opened until a query runs)."""
        self.engine = create_engine(config)
        self.tables: Tables = tables(config.schema)
        self.tracking = tracking_table(config.schema)
        self.schema = config.schema
        self._rollups: bool | None = None
        self._columns: dict[str, set[str]] = {}
        self._grains: set[tuple[str, str]] = set()
        self._ranks = False

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def position(self) -> int:
        """The ledger position the live projection reflects; raises if it was never built."""
        with self.engine.connect() as conn:
            return self._position(conn)

    def _position(self, conn: sa.Connection) -> int:
        if not sa.inspect(conn).has_table(self.tracking.name, schema=self.schema):
            msg = "this database has no projection yet; run 'revledger project' first"
            raise ReportError(msg)
        query = sa.select(self.tracking.c.position).where(self.tracking.c.name == NAME)
        return int(conn.execute(query).scalar_one())

    def behind(self) -> int:
        """How many facts the ledger holds past the live projection's position (0: none).

        Read from the ledger's own events table, which lives in the same database, on the same
        connection as the position (raises, as :meth:`position`, if there is no projection).
        """
        events, position = self.tables.stored(self.engine.dialect.name)
        with self.engine.connect() as conn:
            projected = self._position(conn)
            last = conn.execute(sa.select(sa.func.max(position)).select_from(events)).scalar()
        return max(int(last or 0) - projected, 0)

    def has_rollups(self) -> bool:
        """Whether the live projection has the per-day roll-ups (builds before them have not)."""
        if self._rollups is None:
            with self.engine.connect() as conn:
                names = set(sa.inspect(conn).get_table_names(schema=self.schema))
            needed = (name for name in ROLLUPS if name not in LATER)
            self._rollups = all(self.tables[name].name in names for name in needed)
        return self._rollups

    def has_grain(self, table: str, grain: str) -> bool:
        """Whether the roll-up ``table`` holds rows of ``grain`` (remembered once it does).

        A grain added after a ledger's last build is missing until its next catch-up adds it.
        """
        if (table, grain) not in self._grains:
            with self.engine.connect() as conn:
                if not holds_grain(conn, self.tables[table], grain):
                    return False
            self._grains.add((table, grain))
        return True

    def has_ranks(self) -> bool:
        """Whether ``rl_roll_rank`` exists and holds the cells' ranks (remembered once it does).

        A build before it lacks it until its next catch-up creates and fills it.
        """
        if not self._ranks:
            with self.engine.connect() as conn:
                table = self.tables["roll_rank"]
                if not sa.inspect(conn).has_table(table.name, schema=self.schema):
                    return False
                self._ranks = not ranks_empty(conn, table)
        return self._ranks

    def has_column(self, table: str, column: str) -> bool:
        """Whether the live ``table`` has ``column`` (its columns are read once per reader)."""
        if table not in self._columns:
            name = self.tables[table].name
            with self.engine.connect() as conn:
                try:
                    found = sa.inspect(conn).get_columns(name, self.schema)
                except sa.exc.NoSuchTableError:
                    found = []
            self._columns[table] = {c["name"] for c in found}
        return column in self._columns[table]

    def rows(self, query: sa.Executable) -> Sequence[Any]:
        """Run one query in its own (snapshot) transaction; the rows come in one driver fetch."""
        with self.engine.begin() as conn:
            return conn.execute(query).all()

    def stream(self, query: sa.Executable, batch: int = 20_000) -> Iterator[Any]:
        """Run one query in its own (snapshot) transaction, fetching ``batch`` rows at a time.

        Unlike :meth:`rows`, the result is never held whole: a report that reduces many rows
        (velocity, cohort conversion) keeps only what it reduces them to.
        """
        with self.engine.begin() as conn:
            yield from conn.execute(query.execution_options(yield_per=batch))

    def per_period(self, window: Window, build: Callable[[sa.CTE], sa.Executable]) -> Iterator[Any]:
        """Run ``build(periods)`` once per run of periods and chain the rows."""
        for indexes in window.chunks():
            yield from self.rows(build(window.periods_cte(indexes)))

    def group(self, window: Window) -> sa.ColumnElement[str]:
        """The ``--by`` dimension of the lead (``(none)`` when missing), or a constant."""
        by = window.options.by
        if by is None:
            return sa.literal("", sa.String).label("grp")
        return sa.func.coalesce(self.tables["lead"].c[by], NONE_GROUP).label("grp")

    def with_lead(
        self, window: Window, from_: sa.FromClause, lead_id: sa.ColumnElement[str]
    ) -> sa.FromClause:
        """``from_`` joined to the lead dimension row when the report is split ``--by``."""
        if window.options.by is None:
            return from_
        lead = self.tables["lead"]
        return from_.join(lead, sa.and_(lead.c.lead_id == lead_id, window.known(lead)))

    def known_rows(
        self, window: Window, table: sa.Table, *columns: sa.ColumnElement[Any]
    ) -> sa.Select[Any]:
        """``columns`` of ``table``'s rows known in ``window``, joined to the lead when ``--by``."""
        return (
            sa.select(*columns)
            .select_from(self.with_lead(window, table, table.c.lead_id))
            .where(window.known(table))
        )
