"""Evaluate a funnel definition over a lead's facts, with provenance.

A lead, as a rule sees it at a business instant, is the fold of its effective facts up to that
instant (corrections applied, see :mod:`projections.corrections`): the captured fields and
custom attributes (``lead_updated`` overrides), the latest score and fit, and every touch. Each
value remembers the fact (``source/source_id``) it came from. Lead histories are read from the
funnel projection's fact index (``rl_fact``/``rl_family``), which is caught up first.

A report about a span of business time reads only the leads that may have a fact of the types
it asks about in that span (:meth:`LeadHistories.active`): ``rl_fact`` keeps each fact's
business time and type, indexed together. An amendment can move a fact's business time, so the
lead of a fact so moved is always read; the report then looks at its effective facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from eventsourcing.utils import get_topic

from ledger.application import Ledger
from ledger.definitions import Definition
from ledger.events import CORRECTIONS, FACT_TYPES, Fact
from ledger.rules import Outcome, Rule, Touch
from projections.corrections import Family, order_key
from projections.database import create_engine
from projections.leads import NO_CHANGE
from projections.periods import FOREVER, to_us
from projections.runner import Projection
from projections.schema import tables
from projections.store import families_of, history_query

TRIGGERS = frozenset(
    {"lead_captured", "lead_updated", "score_changed", "touch_recorded", "stage_changed"}
)
CAPTURED = ("email", "name", "company", "account_id", "segment", "country", "lead_source")
SCORED = ("score", "model_version", "fit")  # the values a score_changed fact sets
CHUNK = 400
CORRECTION_TOPICS = tuple(get_topic(cls) for cls in CORRECTIONS)


def topics(*type_names: str) -> tuple[str, ...]:
    """The stored topics of the fact types ``type_names`` (snake_case, as in the JSONL)."""
    return tuple(get_topic(FACT_TYPES[name]) for name in type_names)


def ref(fact: Fact) -> str:
    """How provenance names a fact: ``source/source_id``."""
    return f"{fact.source}/{fact.source_id}"


@dataclass
class LeadView:
    """A lead's values at one instant, each with the fact that supplied it."""

    values: dict[str, tuple[Any, tuple[str, ...]]] = field(default_factory=dict)
    touch_list: list[Touch] = field(default_factory=list)
    stage: str | None = None

    def lookup(self, name: str) -> tuple[Any, tuple[str, ...]]:
        """The value of ``name`` (``attributes.x`` and ``x`` both reach custom attributes)."""
        key = name.removeprefix("attributes.")
        return self.values.get(key, (None, ()))

    @property
    def touches(self) -> Sequence[Touch]:
        """The lead's touches so far."""
        return self.touch_list

    def apply(self, fact: Fact) -> None:
        """Fold one fact (business order) into the view."""
        kind, source = fact.type_name, (ref(fact),)
        if kind == "lead_captured":
            for name in CAPTURED:
                value = getattr(fact, name)
                if value is not None:
                    self.values[name] = (value, source)
        if kind in {"lead_captured", "lead_updated"}:
            for name, value in (getattr(fact, "attributes", None) or {}).items():
                self.values[name] = (value, source)
        elif kind == "score_changed":  # SCORED
            self.values["score"] = (fact.score, source)  # type: ignore[attr-defined]
            self.values["model_version"] = (fact.model_version, source)  # type: ignore[attr-defined]
            if fact.fit is not None:  # type: ignore[attr-defined]
                self.values["fit"] = (fact.fit, source)  # type: ignore[attr-defined]
        elif kind == "touch_recorded":
            fields = {
                name: getattr(fact, name) for name in ("channel", "touch_type", "campaign_id")
            }
            self.touch_list.append(Touch(fields, source[0]))
        elif kind == "stage_changed":
            self.stage = fact.to_stage  # type: ignore[attr-defined]


def facts_read(rules: Iterable[Rule]) -> frozenset[str]:
    """The fact types whose folding (:meth:`LeadView.apply`) can change what ``rules`` find.

    A named value comes from the capture's fields or any custom attribute (``lead_captured``,
    ``lead_updated``), the score's values from ``score_changed`` too; touches from
    ``touch_recorded``. A rule evaluated over a view folded from these types alone holds, and
    names the same facts, as over one folded from every trigger.
    """
    types: set[str] = set()
    for rule in rules:
        for name in rule.reads:
            if name == "touches":
                types.add("touch_recorded")
                continue
            types.update(("lead_captured", "lead_updated"))
            if name.removeprefix("attributes.") in SCORED:
                types.add("score_changed")
    return frozenset(types)


def evaluate(definition: Definition, view: LeadView) -> dict[str, Outcome]:
    """Each automatic transition's outcome for the lead (one per target stage)."""
    outcomes: dict[str, Outcome] = {}
    for transition in definition.transitions:
        outcomes.setdefault(transition.to, transition.rule.evaluate(view))
    return outcomes


def results_document(outcomes: dict[str, Outcome], definition: Definition) -> dict[str, Any]:
    """The ``results`` field of a ``qualification_evaluated`` fact."""
    return {
        stage: {
            "rule": definition.rule_for(stage).text,  # type: ignore[union-attr]
            "met": "yes" if outcome.met else "no",
            "satisfied": [[text, list(refs)] for text, refs in outcome.satisfied],
            "failed": [[text, list(refs)] for text, refs in outcome.failed],
        }
        for stage, outcome in outcomes.items()
    }


def view_at(facts: Iterable[Fact], at: datetime) -> LeadView:
    """The lead as of business instant ``at`` (facts must be in business order)."""
    view = LeadView()
    for fact in facts:
        if fact.occurred_at > at:
            break
        view.apply(fact)
    return view


class LeadHistories:
    """Reads leads' effective facts (as known now) from the funnel projection's fact index."""

    def __init__(self, ledger: Ledger) -> None:
        """Catch the funnel projection up with ``ledger`` so every recorded fact is indexed."""
        projection = Projection(ledger)
        try:
            projection.catch_up()
        finally:
            projection.close()
        self.engine = create_engine(ledger.config)
        self.tables = tables(ledger.config.schema)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def _query(self, lead_ids: Sequence[str] | None = None) -> sa.Select[Any]:
        return history_query(self.tables, self.engine.dialect.name, "lead", lead_ids)

    def families(self, lead_ids: Iterable[str]) -> dict[str, list[Family]]:
        """The fact families (facts with their corrections) of each of ``lead_ids``."""
        ids = sorted(set(lead_ids))
        out: dict[str, list[Family]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                query = self._query(chunk)
                rows = sorted(conn.execute(query), key=lambda r: r.subject)
                for subject, group in groupby(rows, key=lambda r: r.subject):
                    out[subject] = families_of(group)
        return out

    def some(self, lead_ids: Iterable[str]) -> dict[str, list[Fact]]:
        """The effective facts (as known now) of each of ``lead_ids``, in business order."""
        return {
            lead: effective_facts(lead, families, FOREVER)
            for lead, families in self.families(lead_ids).items()
        }

    def every(self) -> Iterator[tuple[str, list[Fact]]]:
        """Every lead with its effective facts, lead by lead (streamed)."""
        yield from self._stream(self._query())

    def active(
        self,
        type_names: Iterable[str],
        span: tuple[datetime, datetime],
        reading: Iterable[str] | None = None,
    ) -> Iterator[tuple[str, list[Fact]]]:
        """The leads that may have a fact of ``type_names`` in ``span``, with their facts.

        Every lead with such a fact among its effective facts is yielded, in lead order, with
        its effective facts of the types ``reading`` (None: all of them), streamed: the leads
        with a fact of ``type_names`` recorded as occurring in ``span``, and the leads of every
        fact an amendment moved in business time (it may have moved into ``span``;
        ``rl_fact.occurred_us`` is None for such an amendment). A retraction, or any other
        amendment, leaves a fact where it was or removes it. Others may come too; a caller
        looks at the facts, as over :meth:`every`.
        """
        fact, family = self.tables["fact"].alias("f"), self.tables["family"].alias("m")
        start, end = to_us(span[0]), to_us(span[1])
        in_span = sa.select(fact.c.root_id).where(
            fact.c.topic.in_(topics(*type_names)),
            fact.c.occurred_us >= start,
            fact.c.occurred_us < end,
        )
        moved = sa.select(fact.c.root_id).where(
            fact.c.topic.in_(CORRECTION_TOPICS), fact.c.occurred_us.is_(None)
        )
        leads = sa.select(family.c.subject).where(
            family.c.kind == "lead", family.c.root_id.in_(sa.union(in_span, moved))
        )
        yield from self._leads(leads, reading)

    def entering(
        self, stages: Iterable[str], span: tuple[datetime, datetime], reading: Iterable[str]
    ) -> Iterator[tuple[str, list[Fact]]]:
        """The leads with a stage change into one of ``stages`` in ``span``, with their facts.

        A lead's stage changes among its effective facts are projected, at their business
        time: each starts a stay (``rl_stay``) or, into the stage the lead is in already, is
        flagged ``no_change`` (``rl_anomaly``). So these are exactly the leads with such a
        change among their effective facts, each yielded (in lead order, streamed) with its
        effective facts of the types ``reading``.
        """
        wanted = sorted(set(stages))
        if not wanted:
            return
        stay, anomaly = self.tables["stay"].c, self.tables["anomaly"].c
        start, end = to_us(span[0]), to_us(span[1])
        entered = sa.select(stay.lead_id).where(
            stay.known_to == FOREVER,
            stay.stage.in_(wanted),
            stay.entered_us >= start,
            stay.entered_us < end,
        )
        again = sa.select(anomaly.lead_id).where(
            anomaly.known_to == FOREVER,
            anomaly.at_us >= start,
            anomaly.at_us < end,
            anomaly.kind == NO_CHANGE,
            anomaly.stage.in_(wanted),
        )
        yield from self._leads(sa.union(entered, again), reading)

    def _leads(
        self, leads: sa.Select[Any] | sa.CompoundSelect[Any], reading: Iterable[str] | None
    ) -> Iterator[tuple[str, list[Fact]]]:
        """The leads ``leads`` selects, each with its effective facts of the types ``reading``."""
        query = self._query().where(self.tables["family"].c.subject.in_(leads))
        if reading is not None:  # a family's rows are its root's type or corrections
            kept = (*topics(*reading), *CORRECTION_TOPICS)
            query = query.where(self.tables["fact"].c.topic.in_(kept))
        yield from self._stream(query)

    def of_type(self, type_name: str) -> Iterator[tuple[str, list[Fact]]]:
        """Each lead with a fact of ``type_name``, with only those facts (effective, in order).

        Only the families (a fact and its corrections) rooted at a fact of that type are read.
        """
        root = self.tables["fact"].alias("root")
        rooted = sa.select(root.c.fact_id).where(root.c.topic.in_(topics(type_name)))
        yield from self._stream(self._query().where(self.tables["fact"].c.root_id.in_(rooted)))

    def _stream(self, query: sa.Select[Any]) -> Iterator[tuple[str, list[Fact]]]:
        """The rows of a :meth:`_query` as (lead, effective facts), lead by lead."""
        query = query.order_by(self.tables["family"].c.subject)
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=5000).execute(query)
            for subject, group in groupby(result, key=lambda r: r.subject):
                yield subject, effective_facts(subject, families_of(group), FOREVER)


def effective_facts(subject: str, families: Iterable[Family], known_at: int) -> list[Fact]:
    """The facts of ``subject`` that count as known at ledger time ``known_at``, business order."""
    if known_at == FOREVER:  # every fact is known: an uncorrected one is its root
        effective = (f.effective(known_at) if f.corrections else f.root for f in families)
    else:
        effective = (f.effective(known_at) for f in families)
    facts = [fact for fact in effective if fact is not None and fact.subject == subject]
    return sorted(facts, key=order_key)
