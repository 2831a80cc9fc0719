"""Writing the projection: store facts by subject, then re-derive the subjects they touch.

Facts about leads, opportunities, campaigns and accounts (and every correction of them) are listed
in ``rl_fact`` (by their position in the ledger, whose stored bytes are read back from the ledger's
own table, not copied) and indexed by subject in ``rl_family``, so that a subject's whole history
can be re-read in one query (:func:`history_query`); its derived rows are
then replaced by :func:`projections.history.known_rows` (funnel tables) and
:func:`projections.credit.derive.credit_rows` (credit tables), pure functions of that history
(:func:`subject_tuples`). Rebuild and incremental catch-up therefore give the same tables; the
rebuild writes the same rows through a bulk path (:mod:`projections.build_scan`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent

from ledger.application import Ledger
from ledger.codec import FactMapper
from ledger.events import Fact
from projections import rollup
from projections.corrections import Family, is_correction, moved_to, stated_us, target_of
from projections.credit import tables as credit_tables
from projections.credit.derive import CREDIT_KINDS, TABLES_BY_KIND, credit_rows
from projections.history import DERIVERS, SUBJECT_KINDS, known_rows
from projections.periods import to_us
from projections.schema import Tables

Subject = tuple[str, str]  # (kind, subject id)
CHUNK = 400
STORED_KINDS = {**SUBJECT_KINDS, **CREDIT_KINDS}  # subject field -> kind of the facts kept
FUNNEL_BY_KIND = {"lead": ("stay", "lead", "anomaly", "handoff", "accept"), "opp": ("opp",)}
DERIVED_BY_KIND = {
    kind: (*FUNNEL_BY_KIND.get(kind, ()), *credit) for kind, credit in TABLES_BY_KIND.items()
}
SUBJECT_COLUMN = {
    "stay": "lead_id",
    "lead": "lead_id",
    "anomaly": "lead_id",
    "handoff": "lead_id",
    "accept": "lead_id",
    "opp": "opportunity_id",
    **credit_tables.SUBJECT_COLUMN,
}
FIELD_OF_KIND = {kind: name for name, kind in STORED_KINDS.items()}
MAPPER = FactMapper()
Row = tuple[Any, ...]


class Stored(NamedTuple):
    """One ledger fact as the projection reads it: position, the fact, and its stored form."""

    position: int
    fact: Fact
    topic: str
    state: bytes


def read_stored(ledger: Ledger, after: int, limit: int, stop: int | None = None) -> list[Stored]:
    """Up to ``limit`` facts recorded after notification ``after`` (and at most ``stop``)."""
    notifications = ledger.recorder.select_notifications(after + 1, limit, stop)
    decode = ledger.decode
    return [Stored(n.id, decode(n), n.topic, n.state) for n in notifications]


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def store_facts(conn: sa.Connection, t: Tables, facts: Iterable[Stored]) -> set[Subject]:
    """Copy one page's projected facts into ``rl_fact``/``rl_family``; return touched subjects."""
    fact_rows: list[dict[str, Any]] = []
    family_rows: set[tuple[str, str, str]] = set()
    touched: set[Subject] = set()
    roots: dict[uuid.UUID, tuple[str, str]] = {}  # fact id -> (root id, kind), this page
    for position, fact, topic, _ in facts:
        if is_correction(fact):
            target = target_of(fact)
            found = roots.get(target) or _root_in_store(conn, t, target)
            if found is None:
                continue  # corrects a fact no projection uses
            root, kind = found
            subjects = _family_subjects(conn, t, root, kind, family_rows)
            subjects |= moved_to(fact, FIELD_OF_KIND[kind])  # an amendment can move the fact
            family_rows.update((root, kind, subject) for subject in subjects)
        else:
            kind = STORED_KINDS.get(fact.subject_field, "")
            if not kind:
                continue
            root = fact.id.hex
            subjects = {fact.subject}
            family_rows.add((root, kind, fact.subject))
        roots[fact.id] = (root, kind)
        touched.update((kind, subject) for subject in subjects)
        fact_rows.append(
            {
                "fact_id": fact.id.hex,
                "root_id": root,
                "recorded_us": to_us(fact.recorded_at),
                "occurred_us": stated_us(fact),
                "topic": topic,
                "position": position,
            }
        )
    if fact_rows:
        conn.execute(sa.insert(t["fact"]), fact_rows)
    _insert_family(conn, t, family_rows)
    return touched


def _root_in_store(conn: sa.Connection, t: Tables, target: uuid.UUID) -> tuple[str, str] | None:
    fact, family = t["fact"], t["family"]
    query = (
        sa.select(fact.c.root_id, family.c.kind)
        .join(family, family.c.root_id == fact.c.root_id)
        .where(fact.c.fact_id == target.hex)
        .limit(1)
    )
    row = conn.execute(query).first()
    return (row.root_id, row.kind) if row else None


def _family_subjects(
    conn: sa.Connection, t: Tables, root: str, kind: str, pending: set[tuple[str, str, str]]
) -> set[str]:
    family = t["family"]
    query = sa.select(family.c.subject).where(family.c.root_id == root, family.c.kind == kind)
    stored = set(conn.execute(query).scalars())
    return stored | {s for r, k, s in pending if r == root and k == kind}


def _insert_family(conn: sa.Connection, t: Tables, rows: set[tuple[str, str, str]]) -> None:
    family = t["family"]
    new = sorted(rows)
    for chunk in _chunks(new):
        roots = sorted({r for r, _, _ in chunk})
        query = sa.select(family.c.root_id, family.c.kind, family.c.subject).where(
            family.c.root_id.in_(roots)
        )
        existing = {tuple(row) for row in conn.execute(query)}
        fresh = [
            {"root_id": r, "kind": k, "subject": s}
            for r, k, s in chunk
            if (r, k, s) not in existing
        ]
        if fresh:
            conn.execute(sa.insert(family), fresh)


def decode(fact_id: str, topic: str, state: bytes) -> Fact:
    """A fact back from its ``rl_fact`` row."""
    stored = StoredEvent(uuid.UUID(fact_id), 1, topic, state)
    fact: Fact = MAPPER.to_domain_event(stored)
    return fact


def history_query(
    t: Tables, dialect: str, kind: str, subjects: Sequence[str] | None = None
) -> sa.Select[Any]:
    """The facts of ``subjects`` of ``kind`` (None: of every subject of that kind).

    Rows of (subject, root_id, fact_id, topic, state); the state is read from the ledger's own
    table, at the position ``rl_fact`` names.
    """
    fact, family = t["fact"], t["family"]
    events, position = t.stored(dialect)
    query = (
        sa.select(family.c.subject, fact.c.root_id, fact.c.fact_id, fact.c.topic, events.c.state)
        .join(fact, fact.c.root_id == family.c.root_id)
        .join(events, position == fact.c.position)
        .where(family.c.kind == kind)
    )
    return query if subjects is None else query.where(family.c.subject.in_(subjects))


def families_of(rows: Iterable[Any]) -> list[Family]:
    """Group :func:`history_query` rows of one subject into families."""
    members: dict[str, list[Fact]] = defaultdict(list)
    roots: dict[str, Fact] = {}
    for _subject, root_id, fact_id, topic, state in rows:
        fact = decode(fact_id, topic, state)
        if fact_id == root_id:
            roots[root_id] = fact
        else:
            members[root_id].append(fact)
    return [Family(root, members[root_id]) for root_id, root in sorted(roots.items())]


def subject_tuples(kind: str, subject: str, families: list[Family]) -> dict[str, list[Row]]:
    """The derived rows of one subject (funnel and credit tables), as tuples per table.

    Each tuple is in the column order of :data:`ROW_COLUMNS`: the subject first,
    ``known_from``/``known_to`` last.
    """
    derived = credit_rows(families, kind, subject)
    if kind in DERIVERS:
        derived.update(known_rows(families, kind, subject))
    return {table: [(subject, *row) for row in rows] for table, rows in derived.items()}


def subject_rows(
    kind: str, subject: str, families: list[Family]
) -> dict[str, list[dict[str, Any]]]:
    """The derived rows of one subject (funnel and credit tables), as insertable dicts per table."""
    return {
        table: [dict(zip(ROW_COLUMNS[table], row, strict=True)) for row in rows]
        for table, rows in subject_tuples(kind, subject, families).items()
    }


COLUMNS = {
    "stay": (
        "seq",
        "stage",
        "entered_us",
        "exited_us",
        "prev_stage",
        "next_stage",
        "move",
        "skipped",
        "reentry",
    ),
    "lead": ("first_contact_us", "lead_source", "segment", "country", "owner", "channel"),
    "anomaly": ("seq", "at_us", "kind", "stage", "detail", "source", "source_id"),
    "handoff": (
        "seq",
        "at_us",
        "month",
        "day",
        "prev_us",
        "team",
        "to_owner",
        "acted_us",
        "delay_us",
        "duplicate",
        "rejected",
        "disqualified",
        "recycled",
        "accepted_before_us",
        "accepted_from_us",
        "accepted_last_us",
    ),
    "accept": ("seq", "at_us", "prev_us", "handed_before_us", "handed_from_us"),
    "opp": ("seq", "stage", "amount_units", "currency", "is_open", "valid_from_us", "valid_to_us"),
    **credit_tables.COLUMNS,
}


ROW_COLUMNS = {
    "fact": ("fact_id", "root_id", "recorded_us", "occurred_us", "topic", "position"),
    "family": ("root_id", "kind", "subject"),
    **{
        table: (SUBJECT_COLUMN[table], *columns, "known_from", "known_to")
        for table, columns in COLUMNS.items()
    },
}  # the column order of every row tuple written to each table


def rederive(conn: sa.Connection, t: Tables, subjects: set[Subject]) -> None:
    """Replace the derived rows of ``subjects`` by a fresh derivation from their facts."""
    delta = rollup.Delta()
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, subject in sorted(subjects):
        by_kind[kind].append(subject)
    for kind, names in by_kind.items():
        for chunk in _chunks(names):
            query = history_query(t, conn.dialect.name, kind, chunk)
            grouped: dict[str, list[Any]] = defaultdict(list)
            for row in conn.execute(query):
                grouped[row.subject].append(row)
            inserts: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for subject in chunk:
                for table, rows in subject_rows(
                    kind, subject, families_of(grouped[subject])
                ).items():
                    inserts[table].extend(rows)
            delta.retract(conn, t, kind, chunk)
            for table in DERIVED_BY_KIND[kind]:
                target = t[table]
                conn.execute(sa.delete(target).where(target.c[SUBJECT_COLUMN[table]].in_(chunk)))
                if inserts[table]:
                    conn.execute(sa.insert(target), inserts[table])
            delta.add(kind, inserts)
    delta.apply(conn, t)
