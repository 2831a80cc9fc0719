"""``audit deal``: one opportunity's credit traced to the touches, rules and corrections behind it.

Three sections (docs/credit.md, "Audit"): the deal (its milestones, linked leads, window and the
sourced-by decision with its rule); every touch of its linked leads with why it counts or not
and its credit under the chosen model and every other model side by side; and each correction of
a fact the credit depends on, with the credit as known just before it was recorded, just after,
and now.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from decimal import Decimal

import sqlalchemy as sa
from eventsourcing.utils import resolve_topic

from ledger.events import FactAmended, FactRetracted
from projections.credit.data import UNIT, CreditData, Deal, load_deal
from projections.credit.derive import FEEDS
from projections.credit.journeys import DAY_US, NO_TOUCH, Touch, credit, credit_key, shares
from projections.credit.models import DEFAULT_HALF_LIFE, MODEL_NAMES, Model, named_model
from projections.credit.sourced import sourced_by
from projections.errors import ReportError
from projections.gc_pause import without_gc
from projections.periods import from_us
from projections.reading import Reader
from projections.report import Report
from projections.store import decode
from projections.window import Window

TOTAL = "(total)"
Correction = FactRetracted | FactAmended


def _models(chosen: Model, half_life: object) -> list[Model]:
    others = [named_model(n, half_life) for n in MODEL_NAMES if n != chosen.name]
    return [chosen, *others]


def _credits(data: CreditData, deal: Deal, window: Window, model: Model) -> dict[object, Decimal]:
    """The deal's credit under ``model``: by touch (or ``(no touch)``)."""
    options = window.options.credit
    journey = data.journey(deal, options.metric, options.lookback_days)
    if journey is None:
        return {}
    amount, _ = deal.value(options.metric)
    return {
        share.touch or NO_TOUCH: part
        for share, part in credit(model, journey, amount, UNIT[options.metric])
    }


def _by_key(data: CreditData, deal: Deal, window: Window) -> dict[str, Decimal]:
    """The deal's credit under the chosen model, by campaign or channel."""
    options = window.options.credit
    journey = data.journey(deal, options.metric, options.lookback_days)
    out: dict[str, Decimal] = defaultdict(Decimal)
    if journey is not None:
        amount, _ = deal.value(options.metric)
        for share, part in credit(options.model, journey, amount, UNIT[options.metric]):
            out[credit_key(share.touch, options.by)] += part
    return out


def _find(reader: Reader, window: Window, opportunity_id: str) -> tuple[CreditData, Deal]:
    data = load_deal(reader, window, opportunity_id)
    deal = data.deals.get(opportunity_id)
    if deal is None:
        msg = f"no opportunity {opportunity_id!r} opened by {window.as_of} in this ledger"
        raise ReportError(f"{msg} ({window.notes()[0].split(';')[0]})")
    if window.options.credit.metric == "revenue" and deal.outcome != "won":
        raise ReportError(
            f"{opportunity_id} is not won as of {window.as_of}; use --metric pipeline"
        )
    return data, deal


def _summary(data: CreditData, deal: Deal, window: Window) -> Report:
    options = window.options.credit
    metric = options.metric
    milestone = deal.milestone(metric)
    assert milestone is not None
    amount, currency = deal.value(metric)
    leads = data.linked(deal)
    decision = sourced_by(data, deal, options.sourced)
    reasons = defaultdict(list)
    for lead, why in leads.items():
        reasons[why].append(lead)
    start = deal.opened_us - options.lookback_days * DAY_US
    items = [
        ("opportunity", deal.opportunity_id),
        ("account", deal.account_id),
        ("type", deal.opp_type),
        ("opened", from_us(deal.opened_us)),
        ("opened amount", f"{deal.amount} {deal.currency}"),
        ("outcome at the as-of date", deal.outcome or "open"),
        ("credited", f"{metric} {amount}{f' {currency}' if currency else ''}"),
        ("milestone", from_us(milestone)),
        (
            "window",
            (
                f"{from_us(start):%Y-%m-%d %H:%M:%S}Z .. milestone (lookback "
                f"{options.lookback_days} days before opened)"
            ),
        ),
        *((f"linked by {why}", ", ".join(sorted(ids))) for why, ids in sorted(reasons.items())),
        ("sourced", f"{decision.sourced}: {decision.reason}"),
        ("sourced rule", options.sourced.text()),
        ("model", options.model.describe()),
    ]
    if deal.outcome == "won":
        won = f"{from_us(deal.closed_us or 0):%Y-%m-%d %H:%M:%S}Z"
        items.insert(6, ("won", f"{won}: {deal.won_amount} {deal.won_currency}"))
    return Report(
        f"Deal {deal.opportunity_id}",
        ["item", "value"],
        [list(i) for i in items],
        notes=window.notes(),
    )


def _touches(data: CreditData, deal: Deal, window: Window, models: list[Model]) -> Report:
    options = window.options.credit
    milestone = deal.milestone(options.metric) or 0
    start = deal.opened_us - options.lookback_days * DAY_US
    leads = data.linked(deal)
    by_model = [_credits(data, deal, window, m) for m in models]
    journey = data.journey(deal, options.metric, options.lookback_days)
    roles: dict[Touch | None, str] = {}
    if journey is not None:
        roles = {s.touch: ", ".join(s.roles) for s in shares(options.model, journey) if s.touch}
    report = Report(
        f"Touches of {deal.opportunity_id}: {options.metric} credit by model",
        [
            "at",
            "lead",
            "linked_by",
            "channel",
            "campaign",
            "touch_type",
            "source_id",
            "status",
            f"roles ({models[0].name})",
            *(m.name for m in models),
        ],
    )
    for touch in data.touches_of(leads):
        status = (
            "before window"
            if touch.at_us < start
            else "after milestone"
            if touch.at_us > milestone
            else "credited"
        )
        report.rows.append(
            [
                from_us(touch.at_us),
                touch.lead_id,
                leads[touch.lead_id],
                touch.channel,
                touch.campaign_id,
                touch.touch_type,
                f"{touch.source}/{touch.source_id}",
                status,
                roles.get(touch, ""),
                *(c.get(touch) for c in by_model),
            ]
        )
    if any(NO_TOUCH in c for c in by_model):
        report.rows.append(
            [
                None,
                None,
                None,
                None,
                NO_TOUCH,
                None,
                None,
                "no credited touch",
                "",
                *(c.get(NO_TOUCH) for c in by_model),
            ]
        )
    report.rows.append(
        [
            None,
            None,
            None,
            None,
            TOTAL,
            None,
            None,
            "",
            "",
            *(sum(c.values(), Decimal(0)) for c in by_model),
        ]
    )
    report.notes.append("status: credited = inside the window and at or before the milestone")
    return report


def _corrections(reader: Reader, deal: Deal, data: CreditData) -> list[tuple[int, Correction]]:
    """(recorded µs, fact) of each correction of a fact this deal's credit depends on."""
    if not reader.has_column("fact", "position"):
        msg = "the projection predates rl_fact.position; run 'revledger rebuild' once"
        raise ReportError(msg)
    t = reader.tables
    fact, family = t["fact"], t["family"]
    events, position = t.stored(reader.engine.dialect.name)
    root = fact.alias("root")
    subjects = sa.or_(
        sa.and_(family.c.kind == "opp", family.c.subject == deal.opportunity_id),
        sa.and_(family.c.kind == "lead", family.c.subject.in_(sorted(data.linked(deal)))),
    )
    query = (
        sa.select(fact.c.fact_id, fact.c.topic, events.c.state, fact.c.recorded_us, root.c.topic)
        .join(family, family.c.root_id == fact.c.root_id)
        .join(root, root.c.fact_id == fact.c.root_id)
        .join(events, position == fact.c.position)
        .where(subjects, fact.c.fact_id != fact.c.root_id)
        .order_by(fact.c.recorded_us, fact.c.fact_id)
    )
    feeds = FEEDS["opp"] | FEEDS["lead"]
    found: list[tuple[int, Correction]] = []
    for fact_id, topic, state, recorded, root_topic in reader.rows(query):
        correction = decode(fact_id, topic, state)
        if resolve_topic(root_topic).type_name in feeds:
            assert isinstance(correction, (FactRetracted, FactAmended))
            found.append((recorded, correction))
    return found


def _correction_rows(reader: Reader, window: Window, data: CreditData, deal: Deal) -> Report:
    """Each correction that changed the deal's credit: by key, before, after and now."""
    options = window.options.credit
    report = Report(
        f"Corrections behind the credit of {deal.opportunity_id} "
        f"({options.model.name}, by {options.by})",
        ["recorded", "correction", "target", "reason", options.by, "before", "after", "now"],
        notes=["before/after: credit as known just before / at the correction's ledger time"],
    )
    now = _by_key(data, deal, window)
    for recorded, fix in _corrections(reader, deal, data):
        if window.known_at is not None and recorded > window.known_at:
            continue
        views = []
        for known_at in (recorded - 1, recorded):
            then = dataclasses.replace(window, known_at=known_at)
            seen = load_deal(reader, then, deal.opportunity_id)
            found = seen.deals.get(deal.opportunity_id)
            known = found is not None and found.milestone(options.metric) is not None
            views.append(_by_key(seen, found, then) if found and known else {})
        target = f"{fix.target_source}/{fix.target_source_id}"
        for key in sorted(views[0].keys() | views[1].keys()):
            before, after = views[0].get(key), views[1].get(key)
            if before != after:
                row = [from_us(recorded), fix.type_name, target, fix.reason, key, before, after]
                report.rows.append([*row, now.get(key)])
    if not report.rows:
        report.notes.append("no correction changed this deal's credit")
    return report


@without_gc
def audit_deal(reader: Reader, window: Window, opportunity_id: str) -> list[Report]:
    """The three audit sections of one opportunity."""
    options = window.options.credit
    data, deal = _find(reader, window, opportunity_id)
    models = _models(options.model, options.model.half_life_days or DEFAULT_HALF_LIFE)
    return [
        _summary(data, deal, window),
        _touches(data, deal, window, models),
        _correction_rows(reader, window, data, deal),
    ]
