"""Corrections: which version of a fact counts, as the ledger knew it at a given ledger time.

A *family* is a fact and every correction that names it, directly or through another correction.
``fact_retracted`` removes its target; ``fact_amended`` replaces its target by a copy with
``changes`` applied. A correction can itself be retracted (its target is restored) or amended
(its ``changes`` are replaced). See docs/metrics.md, section "Corrections".
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from ledger.codec import fact_to_record, parse_fact
from ledger.errors import InvalidFact
from ledger.events import CORRECTIONS, Fact, FactAmended, FactRetracted, fact_id
from projections.periods import to_us


def order_key(fact: Fact) -> tuple[datetime, datetime, str, str]:
    """The deterministic business-time order of facts: occurred, recorded, source, source id."""
    return (fact.occurred_at, fact.recorded_at, fact.source, fact.source_id)


def is_correction(fact: Fact) -> bool:
    """Whether ``fact`` retracts or amends another fact."""
    return isinstance(fact, CORRECTIONS)


def target_of(fact: Fact) -> uuid.UUID:
    """The id of the fact a correction names."""
    assert isinstance(fact, (FactRetracted, FactAmended))
    return fact_id(fact.target_source, fact.target_source_id)


@dataclass
class Family:
    """A fact and all the corrections that name it (directly or through other corrections)."""

    root: Fact
    corrections: list[Fact] = field(default_factory=list)

    @cached_property
    def recorded_us(self) -> int:
        """The root fact's ledger time, in microseconds (worked out once)."""
        return to_us(self.root.recorded_at)

    @cached_property
    def order(self) -> tuple[datetime, datetime, str, str]:
        """The root fact's :func:`order_key` (worked out once)."""
        return order_key(self.root)

    @cached_property
    def subject(self) -> str:
        """The subject the root fact, as recorded, is about (worked out once)."""
        return self.root.subject

    def effective(self, known_at: int) -> Fact | None:
        """The version of the root fact that counts when only facts recorded <= ``known_at`` do."""
        if not self.corrections:
            return self.root if self.recorded_us <= known_at else None
        children: dict[uuid.UUID, list[Fact]] = defaultdict(list)
        for correction in sorted(self.corrections, key=order_key):
            if to_us(correction.recorded_at) <= known_at:
                children[target_of(correction)].append(correction)
        return _resolve(self.root, children, known_at)

    def subjects(self) -> set[str]:
        """Every subject any version of the root fact can be about (amendments may move it)."""
        found = {self.root.subject}
        for correction in self.corrections:
            found.update(moved_to(correction, self.root.subject_field))
        return found


def stated_us(fact: Fact) -> int | None:
    """The business time ``rl_fact`` keeps for ``fact`` (microseconds).

    A fact's own, except for an amendment that moves the fact it corrects in business time
    (``occurred_at`` in its changes, at any depth): None, as that fact may now be anywhere.
    """
    if isinstance(fact, FactAmended) and any(_nested_values(fact.changes, "occurred_at")):
        return None
    return to_us(fact.occurred_at)


def moved_to(correction: Fact, name: str) -> set[str]:
    """The values an amendment (or an amendment of one) gives to the subject field ``name``."""
    if not isinstance(correction, FactAmended):
        return set()
    return set(_nested_values(correction.changes, name))


def _nested_values(changes: dict[str, Any], name: str) -> Iterable[str]:
    if name in changes and changes[name] not in (None, ""):
        yield str(changes[name]).strip()
    nested = changes.get("changes")
    if isinstance(nested, dict):
        yield from _nested_values(nested, name)


def _resolve(fact: Fact, children: dict[uuid.UUID, list[Fact]], known_at: int) -> Fact | None:
    """Apply the known corrections of ``fact`` in business order; None when it is retracted."""
    if to_us(fact.recorded_at) > known_at:
        return None
    current = fact
    for correction in children.get(fact.id, ()):
        effective = _resolve(correction, children, known_at)
        if effective is None:
            continue
        if isinstance(effective, FactRetracted):
            return None
        assert isinstance(effective, FactAmended)
        try:
            current = parse_fact({**fact_to_record(current), **effective.changes})
        except InvalidFact:
            continue  # an amendment that no longer fits the fact it amends is void
    return current
