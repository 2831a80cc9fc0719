"""Velocity's medians and p90s: found by rank from the duration histograms, and kept per cell.

A nearest-rank median or p90 of a set of durations is the duration at rank ⌈count/2⌉ or
⌈0.9·count⌉ in duration order. ``rl_roll_dur`` holds the set's histogram (counts per bucket,
:func:`projections.durations.bucket_of`), so the bucket holding a rank and the rank within that
bucket come from running counts (:func:`locate`), and the duration itself is one short range of
``rl_dur_sample``'s index, cut at that rank (:func:`find_durations`).

``rl_roll_rank`` keeps the answer per *cell*: a (grain, day, measure, key) of ``rl_roll_dur``,
the durations ending in one UTC day, ISO week, UTC month or UTC quarter. Per cell it holds the
count, the sum and the median's and p90's durations, so a report whose periods are whole days,
weeks, months or quarters reads one row per period and key instead of ranking a histogram
(projections/velocity.py). Invariant: every cell with rows in ``rl_roll_dur`` has a row here,
in the same transaction. A row whose ``median_us`` is NULL is *stale*: a catch-up changed the
cell's durations (:func:`mark_stale`, in the page's transaction) and the cell is ranked afresh
when the catch-up has no more facts to apply (:func:`refresh`); until then a report ranks that
period from the histogram. A rebuild ranks every cell (:func:`build`), and so does the first
catch-up of a projection built before the table existed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from projections.database import driver_mark
from projections.schema import Tables
from projections.window import (
    DAY,
    MONTH,
    QUARTER,
    WEEK,
    grain_starts,
    month_of,
    next_month,
)

RANKS_PER_QUERY = 100  # SQLite: lookups run as one compound statement
GRAINS = (DAY, WEEK, MONTH, QUARTER)  # every grain of rl_roll_dur, each with its cells here
CELL = ("grain", "day", "measure", "key")
RANK_MEASURES = ("n", "total", "median_us", "p90_us")
Cell = tuple[str, int, str, str]  # grain, day (the grain's first), measure, key
Lookup = tuple[int, int, str, str, int, int]  # first day, day after, measure, key, bucket, rank


def nearest_ranks(count: int) -> tuple[int, int]:
    """The 1-based ranks of the nearest-rank median (⌈count/2⌉) and p90 (⌈0.9·count⌉)."""
    return (count + 1) // 2, (9 * count + 9) // 10


def locate(buckets: Iterable[tuple[int, int]], count: int) -> list[tuple[int, int]]:
    """The (bucket, 0-based rank within it) of the median and of the p90.

    ``buckets``: (bucket, how many durations) in bucket order, ``count`` durations in all.
    """
    ranks = nearest_ranks(count)
    found: list[tuple[int, int]] = []
    upto = 0
    for bucket, n in buckets:
        below, upto = upto, upto + n
        while len(found) < len(ranks) and ranks[len(found)] <= upto:
            found.append((bucket, ranks[len(found)] - 1 - below))
        if len(found) == len(ranks):
            break
    return found


def cell_days(grain: str, day: int) -> tuple[int, int]:
    """The UTC days [first, after) of the cell of ``grain`` starting on ``day``."""
    if grain == DAY:
        return day, day + 1
    if grain == WEEK:
        return day, day + 7
    after = next_month(day)
    if grain == QUARTER:
        after = next_month(next_month(after))
    return day, after


def cell_of(first: int, after: int, grains: Iterable[str]) -> tuple[str, int] | None:
    """The cell (grain, day) of ``grains`` that is exactly the UTC days [first, after), if any."""
    starts = dict(grain_starts(first))
    for grain in grains:
        if starts[grain] == first and cell_days(grain, first)[1] == after:
            return grain, first
    return None


def find_durations(conn: sa.Connection, sample: sa.Table, lookups: Sequence[Lookup]) -> list[int]:
    """The duration at each (first day, day after, measure, key, bucket, 0-based rank).

    One range of ``rl_dur_sample``'s index per lookup, ordered by duration and cut at the rank,
    run in the index's order (measure, key, bucket, then days), so neighbours share pages.
    Days that are one UTC month read the index by month, whose entries are in duration order
    (no sort); whole months (a quarter) that index's range of months; any other days the day
    index's range. The statements are written once and their parameters bound by the driver
    (:func:`compound`): building hundreds of expression trees cost more than running them.
    """
    arms: dict[str, list[list[object]]] = {"month": [], "months": [], "days": []}
    in_index_order = sorted(range(len(lookups)), key=lambda i: (*lookups[i][2:5], lookups[i][0]))
    for i in in_index_order:
        first, after, measure, key, bucket, rank = lookups[i]
        arm: list[object] = [i, measure, key, bucket]
        if month_of(first) != first or month_of(after) != after:
            arms["days"].append([*arm, first, after, rank])
        elif next_month(first) == after:
            arms["month"].append([*arm, first, rank])
        else:
            arms["months"].append([*arm, first, after, rank])
    found = [0] * len(lookups)
    for span, chosen in arms.items():
        statement = _rank_statement(conn, sample, span)
        for i, duration in compound(conn, statement, chosen, RANKS_PER_QUERY):
            found[i] = int(duration)
    return found


def _rank_statement(conn: sa.Connection, sample: sa.Table, span: str) -> str:
    """One lookup of :func:`find_durations` in a ``month``, a range of ``months`` or ``days``."""
    dialect = conn.dialect
    mark = driver_mark(dialect)
    name = dialect.identifier_preparer.format_table(sample)
    key = f"{name}.{dialect.identifier_preparer.quote('key')}"
    when = {
        "month": f"{name}.month = {mark}",
        "months": f"{name}.month >= {mark} AND {name}.month < {mark}",
        "days": f"{name}.day >= {mark} AND {name}.day < {mark}",
    }[span]
    return (
        f"SELECT CAST({mark} AS INTEGER) AS i, {name}.duration_us AS d "  # noqa: S608 (our names)
        f"FROM {name} WHERE {name}.measure = {mark} AND {key} = {mark} "
        f"AND {name}.bucket = {mark} AND {when} "
        f"ORDER BY {name}.duration_us LIMIT 1 OFFSET {mark}"
    )


def compound(
    conn: sa.Connection, arm: str, arms: list[list[object]], per_query: int
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``arm`` (SQL with the driver's positional parameters) for each of ``arms``.

    On SQLite the copies run ``per_query`` at a time as one ``UNION ALL``, each a subquery (so
    an arm may have its own ``ORDER BY`` and ``LIMIT``), with the parameters bound by the
    driver: building and compiling an expression tree per arm cost more than running them.
    PostgreSQL plans a compound statement afresh each time (about a millisecond per arm), so
    there every arm runs from one statement (:func:`_lateral`).
    """
    if not arms:
        return
    if conn.dialect.name == "postgresql":
        yield from _lateral(conn, arm, arms)
        return
    for first in range(0, len(arms), per_query):
        chunk = arms[first : first + per_query]
        copies = (f"SELECT * FROM ({arm}) r{i}" for i in range(len(chunk)))  # noqa: S608
        params = tuple(value for values in chunk for value in values)
        yield from conn.exec_driver_sql(" UNION ALL ".join(copies), params)


def _lateral(conn: sa.Connection, arm: str, arms: list[list[object]]) -> Iterator[tuple[Any, ...]]:
    """:func:`compound` on PostgreSQL: ``arm`` joined laterally to its parameters' arrays.

    Each parameter of ``arm`` becomes a column of ``unnest`` over one array per parameter
    (``bigint[]`` or ``text[]``), so the statement's text is the same whatever the number of
    arms and the driver prepares it once per connection; the planner plans ``arm`` once, as
    the inner side of a nested loop. ``OFFSET 0`` keeps it there: an arm without a ``LIMIT``
    would otherwise be pulled up into a join, which PostgreSQL planned as a hash join over a
    scan of every row of the arm's table (the stays that never ended: 546 ms at 10M events,
    against a few ms for the ranges).
    """
    pieces = arm.split("%s")
    names = [f"p{j}" for j in range(len(pieces) - 1)]
    inner = pieces[0] + "".join(f"v.{n}{p}" for n, p in zip(names, pieces[1:], strict=True))
    columns = list(zip(*arms, strict=True))
    kinds = ["bigint" if all(isinstance(v, int) for v in c) else "text" for c in columns]
    arrays = ", ".join(f"%s::{kind}[]" for kind in kinds)
    sql = (
        f"SELECT lk.* FROM unnest({arrays}) AS v({', '.join(names)}) "  # noqa: S608 (our SQL)
        f"CROSS JOIN LATERAL (SELECT * FROM ({inner}) AS arm OFFSET 0) AS lk"
    )
    yield from conn.exec_driver_sql(sql, tuple(list(c) for c in columns))


# --- keeping rl_roll_rank ----------------------------------------------------------------------


def _ranked_cells(
    conn: sa.Connection, t: Tables, rows: Iterable[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """``rl_roll_rank`` rows (cell, n, total, median, p90) of histogram rows in key order.

    ``rows``: (grain, day, measure, key, bucket, n, total), ordered by all but the last two.
    """
    cells: list[tuple[Cell, int, int]] = []
    lookups: list[Lookup] = []
    for cell, group in groupby(rows, key=itemgetter(0, 1, 2, 3)):
        buckets = [(bucket, n, total) for *_, bucket, n, total in group]
        count = sum(n for _, n, _ in buckets)
        if not count:
            continue
        first, after = cell_days(cell[0], cell[1])
        for bucket, rank in locate(((b, n) for b, n, _ in buckets), count):
            lookups.append((first, after, cell[2], cell[3], bucket, rank))
        cells.append((cell, count, sum(total for *_, total in buckets)))
    durations = find_durations(conn, t["dur_sample"], lookups)
    return [
        (*cell, count, total, durations[2 * i], durations[2 * i + 1])
        for i, (cell, count, total) in enumerate(cells)
    ]


def _histograms(t: Tables) -> sa.Select[Any]:
    roll = t["roll_dur"]
    columns = (*CELL, "bucket", "n", "total")
    order = (*CELL, "bucket")
    return sa.select(*(roll.c[c] for c in columns)).order_by(*(roll.c[c] for c in order))


def build(conn: sa.Connection, t: Tables) -> None:
    """Rank every cell of ``rl_roll_dur`` into an empty ``rl_roll_rank``.

    PostgreSQL first gets statistics of the tables just filled in this transaction: without
    them it may plan the lookups as scans of the whole sample table.
    """
    if conn.dialect.name == "postgresql":
        quote = conn.dialect.identifier_preparer
        for name in ("dur_sample", "roll_dur"):
            conn.exec_driver_sql(f"ANALYZE {quote.format_table(t[name])}")
    rows = _ranked_cells(conn, t, conn.execute(_histograms(t)))
    if rows:
        table = t["roll_rank"]
        names = (*CELL, *RANK_MEASURES)
        conn.execute(sa.insert(table), [dict(zip(names, row, strict=True)) for row in rows])


def sample_cells(samples: Iterable[Sequence[Any]]) -> set[Cell]:
    """The cells, at every grain, of ``rl_dur_sample`` rows (keys in ``SAMPLE_KEY`` order)."""
    return {
        (grain, first, measure, key)
        for measure, key, _, day, *_rest in samples
        for grain, first in grain_starts(day)
    }


def mark_stale(conn: sa.Connection, t: Tables, cells: Iterable[Cell]) -> None:
    """Mark ``cells`` stale (their durations changed): rows with NULL measures, added if new."""
    table = t["roll_rank"]
    values = [dict(zip(CELL, cell, strict=True)) for cell in sorted(set(cells))]
    if not values:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[c] for c in CELL],
        set_=dict.fromkeys(RANK_MEASURES, None),
    )
    conn.execute(statement, values)


def refresh(conn: sa.Connection, t: Tables) -> None:
    """Rank the stale cells afresh, dropping those left without durations.

    The stale rows are found through a partial index (none: one probe), each one's histogram
    read from its own range of ``rl_roll_dur``'s key (:func:`_cell_histograms`). A projection
    built before ``rl_roll_rank`` existed, whose table is still empty, has every cell ranked
    instead.
    """
    table, roll = t["roll_rank"], t["roll_dur"]
    if empty(conn, table):
        if not empty(conn, roll):
            build(conn, t)
        return
    stale = table.c.median_us.is_(None)
    cells = [
        tuple(row) for row in conn.execute(sa.select(*(table.c[c] for c in CELL)).where(stale))
    ]
    if not cells:
        return
    ranked = _ranked_cells(conn, t, sorted(_cell_histograms(conn, roll, cells)))
    if ranked:
        update = (
            sa.update(table)
            .where(*(table.c[c] == sa.bindparam(f"k_{c}") for c in CELL))
            .values({m: sa.bindparam(f"v_{m}") for m in RANK_MEASURES})
        )
        conn.execute(
            update,
            [
                {
                    **{f"k_{c}": v for c, v in zip(CELL, row[: len(CELL)], strict=True)},
                    **{f"v_{m}": v for m, v in zip(RANK_MEASURES, row[len(CELL) :], strict=True)},
                }
                for row in ranked
            ],
        )
    conn.execute(sa.delete(table).where(stale))


def _cell_histograms(
    conn: sa.Connection, roll: sa.Table, cells: list[tuple[Any, ...]]
) -> Iterator[tuple[Any, ...]]:
    """The ``rl_roll_dur`` rows (cell, bucket, n, total) of ``cells``: a key range each.

    Joining the stale rows to ``rl_roll_dur`` instead, SQLite scans all of ``rl_roll_dur``.
    """
    dialect = conn.dialect
    mark = driver_mark(dialect)
    quote = dialect.identifier_preparer
    name = quote.format_table(roll)
    columns = ", ".join(quote.quote(c) for c in (*CELL, "bucket", "n", "total"))
    match = " AND ".join(f"{quote.quote(c)} = {mark}" for c in CELL)
    arm = f"SELECT {columns} FROM {name} WHERE {match}"  # noqa: S608 (names from our schema)
    yield from compound(conn, arm, [list(cell) for cell in cells], RANKS_PER_QUERY)


def empty(conn: sa.Connection, table: sa.Table) -> bool:
    """Whether ``table`` has no row (read along its key, so PostgreSQL uses the index)."""
    query = sa.select(sa.literal(1)).select_from(table).order_by(*table.primary_key.columns)
    return conn.execute(query.limit(1)).first() is None
