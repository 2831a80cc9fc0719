"""The rebuild's pass over the ledger: each fact decoded once, each subject derived once.

:class:`Scan` takes the ledger's facts in recording order and emits the rows of every shadow table
as tuples (into a :class:`~projections.build_bulk.Bulk`): ``rl_fact`` (each fact's ledger position),
``rl_family``, and the derived rows of each subject, computed from the facts already in memory by
the same pure function as catch-up (:func:`projections.store.subject_tuples`).

A subject can only be derived once all its facts are known, and the ledger is not ordered by
subject. The scan keeps the families (a fact and its corrections) of recently touched subjects in
memory, up to ``budget`` facts; when it must make room, it derives the subject touched longest ago
and forgets its facts. Should a fact about such a subject turn up later, the subject is marked
*spoiled*: its facts are all in ``rl_fact`` by then, so :func:`rederive_spoiled` re-derives it from
the shadow tables at the end, replacing whatever was emitted for it, exactly as catch-up would.
A correction whose family is no longer in memory is kept aside (:attr:`Scan.pending`): once the
pass is over and the facts' indexes are built, the rebuild stores those corrections in the shadow
tables as catch-up stores any fact (:func:`projections.store.store_facts`), and the subjects of
their families are spoiled the same way. So nothing is looked
up by fact id during the load, and ``rl_fact`` and ``rl_family`` are written in the order of
their keys (the ledger's position, the subject) rather than at random places of an id's index.
Memory therefore stays small whatever the ledger's order:
``budget`` facts, plus a Bloom filter of the subjects already derived (sized for as many subjects
as the ledger has facts, with 1% false positives: about 1.2 bytes per fact, 11 MiB at 10 million)
and the names of the spoiled ones. A false positive only spoils a subject needlessly: it is then
derived from the shadow tables, correctly. On a ledger where a subject's facts are recorded near
each other (the usual case, and the synthetic funnel's) almost nothing is spoiled, and every fact
is decoded once.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from rbloom import Bloom

from ledger.events import Fact
from projections.build_bulk import Bulk
from projections.corrections import Family, is_correction, moved_to, stated_us, target_of
from projections.periods import to_us
from projections.schema import Tables
from projections.store import (
    CHUNK,
    DERIVED_BY_KIND,
    FIELD_OF_KIND,
    STORED_KINDS,
    SUBJECT_COLUMN,
    Stored,
    Subject,
    families_of,
    history_query,
    subject_tuples,
)

BUDGET = 50_000  # facts kept in memory (about 1.3 KiB each)
FALSE_POSITIVES = 0.01  # of the filter of derived subjects, were every fact a subject of its own


class Held:
    """A family kept in memory: its root id and kind, its subjects, and how many hold it now."""

    __slots__ = ("family", "holders", "ident", "kind", "root", "subjects")

    def __init__(self, root: str, kind: str, family: Family, subjects: tuple[str, ...]) -> None:
        """A family of ``kind`` rooted at fact ``root``, about ``subjects`` (held by none yet)."""
        self.ident = family.root.originator_id.int  # the root's key in ``Scan.by_id``
        self.root = root
        self.kind = kind
        self.family = family
        self.subjects = subjects
        self.holders = 0  # held subjects whose list of families includes this one

    def size(self) -> int:
        """How many facts the family holds."""
        return 1 + len(self.family.corrections)


class Scan:
    """Turns facts, in recording order, into the rows of every shadow table (see module doc)."""

    def __init__(self, out: Bulk, budget: int = BUDGET, facts: int = 1_000_000) -> None:
        """Emit rows into ``out``.

        ``facts``: how many facts the pass reads at most, which bounds the number of subjects.
        """
        self.out = out
        self.facts, self.families = out.rows["fact"], out.rows["family"]
        self.pending: list[Stored] = []  # corrections of families no longer in memory
        self.budget = budget
        self.held: OrderedDict[Subject, list[Held]] = OrderedDict()  # least recently touched first
        self.by_id: dict[int, Held] = {}  # every fact in memory (id as int) -> its family
        self.count = 0  # facts in memory
        self.derived = Bloom(max(facts, 1024), FALSE_POSITIVES)  # the subjects derived
        self.spoiled: set[Subject] = set()
        self.subjects = 0  # subjects derived so far

    def add(self, page: Iterable[Stored]) -> None:
        """Take in one page of facts."""
        facts, families, by_id, held_now = self.facts, self.families, self.by_id, self.held
        stamp, recorded = None, 0  # facts recorded in one batch share their ledger time
        for position, fact, topic, state in page:
            if fact.timestamp != stamp:  # fact.recorded_at, without the property call
                stamp = fact.timestamp
                recorded = to_us(stamp)
            fid = fact.originator_id  # fact.id, without the property call
            if is_correction(fact):
                root = self._correction(fact)
                if root is None:  # its family is not in memory: stored after the pass
                    self.pending.append(Stored(position, fact, topic, state))
                    continue
                fact_id = fid.hex
            else:
                kind = STORED_KINDS.get(fact.subject_field)
                if kind is None:
                    continue
                root = fact_id = fid.hex
                family = Family(fact)
                family.recorded_us = recorded  # known already: spare the derivation the work
                subject = family.subject
                families.append((root, kind, subject))
                held = Held(root, kind, family, (subject,))
                by_id[held.ident] = held
                self.count += 1
                key = (kind, subject)
                mine = held_now.get(key)
                if mine is None:
                    held.holders = 1  # provisionally: forgotten below unless attached
                    self._attach(held, subject)
                    self._release(held)
                else:  # the common case, inlined: another fact of a subject in memory
                    held_now.move_to_end(key)
                    mine.append(held)
                    held.holders = 1
            facts.append((fact_id, root, recorded, stated_us(fact), topic, position))
            while self.count > self.budget:
                self._derive(*held_now.popitem(last=False))

    def finish(self) -> set[Subject]:
        """Derive every subject still in memory; return the spoiled ones."""
        while self.held:
            self._derive(*self.held.popitem(last=False))
        return self.spoiled

    def _correction(self, fact: Fact) -> str | None:
        """Add ``fact`` to its family in memory and return the root; None if not in memory."""
        held = self.by_id.get(target_of(fact).int)
        if held is None:
            return None
        kind = held.kind
        new = sorted(moved_to(fact, FIELD_OF_KIND[kind]).difference(held.subjects))
        self.families.extend((held.root, kind, s) for s in new)
        held.family.corrections.append(fact)
        self.by_id[fact.id.int] = held
        self.count += 1
        old, held.subjects = held.subjects, (*held.subjects, *new)
        held.holders += 1  # keeps the family while its subjects are visited
        for subject in old:
            key = (kind, subject)
            if key in self.held:
                self.held.move_to_end(key)
            elif key not in self.spoiled:
                self._spoil(key)  # derived already, without this correction
        for subject in new:
            self._attach(held, subject)
        self._release(held)
        return held.root

    def _attach(self, held: Held, subject: str) -> None:
        """``held`` has just become one of ``subject``'s families."""
        key = (held.kind, subject)
        families = self.held.get(key)
        if families is not None:
            self.held.move_to_end(key)
        elif key in self.spoiled:
            return
        elif key in self.derived:
            self._spoil(key)
            return
        else:
            families = self.held[key] = []
        families.append(held)
        held.holders += 1

    def _spoil(self, key: Subject) -> None:
        self.spoiled.add(key)
        for held in self.held.pop(key, ()):
            self._release(held)

    def _release(self, held: Held) -> None:
        """One holder of ``held`` lets go; forget its facts once nobody holds it."""
        held.holders -= 1
        if held.holders > 0:
            return
        by_id = self.by_id
        del by_id[held.ident]
        for correction in held.family.corrections:
            del by_id[correction.id.int]
        self.count -= held.size()

    def _derive(self, key: Subject, families: list[Held]) -> None:
        kind, subject = key
        rows = self.out.rows
        for table, derived in subject_tuples(kind, subject, [h.family for h in families]).items():
            rows[table].extend(derived)
        self.derived.add(key)
        self.subjects += 1
        by_id = self.by_id
        for held in families:
            if held.holders == 1 and not held.family.corrections:  # the common case, inlined
                held.holders = 0
                del by_id[held.ident]
                self.count -= 1
            else:
                self._release(held)


def rederive_spoiled(
    conn: sa.Connection, t: Tables, out: Bulk, spoiled: set[Subject]
) -> Iterable[int]:
    """Replace the rows of ``spoiled`` subjects by a derivation from the shadow tables' facts.

    Rows are deleted here and the new ones left in ``out`` for the caller to write; yields the
    number of subjects derived after each chunk, so the caller can write and report progress.
    """
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, subject in sorted(spoiled):
        by_kind[kind].append(subject)
    for kind, names in by_kind.items():
        for start in range(0, len(names), CHUNK):
            chunk = names[start : start + CHUNK]
            for table in DERIVED_BY_KIND[kind]:
                target = t[table]
                conn.execute(sa.delete(target).where(target.c[SUBJECT_COLUMN[table]].in_(chunk)))
            query = history_query(t, conn.dialect.name, kind, chunk).order_by("subject")
            rows: list[Any] = list(conn.execute(query))
            for subject, group in groupby(rows, key=lambda r: r.subject):
                derived = subject_tuples(kind, subject, families_of(group))
                for table, tuples in derived.items():
                    out.rows[table].extend(tuples)
            yield len(chunk)
