"""Credit under the default model, as the projection keeps it: per deal, and summed per UTC day.

The attribution and spend reports share each deal's value between the touches of its journey
(:mod:`projections.credit.journeys`). Under the default options (the linear model, a lookback
of :data:`~projections.credit.options.DEFAULT_LOOKBACK_DAYS`) a deal's parts depend only on
the current deal, close, contact and touch rows, never on a report's window, so the projection
computes them when a deal or one of its linked leads changes and keeps their sums per day in
``rl_roll_credit`` (:mod:`projections.rollup`), keyed by:

- the metric (``pipeline`` and ``deals`` at the opening; ``revenue`` at every won close, with
  ``until``, the UTC day of the deal's next close, since a won close is the deal's outcome at a
  cap only while no later close precedes it);
- the split: the campaign (``(no campaign)``) or the channel each part is credited to
  (``(no touch)`` when the journey has none), or ``total``, the deal's whole value;
- the deal's opportunity type and the credited currency (``""`` for ``deals``).

Measures: ``deals`` (deals with a part under the key; in ``total`` rows every deal credited),
``touches`` (touches with a part; in ``total`` rows the deals credited to ``(no touch)``), and the
amount as ``rl_roll_deal`` sums it (ten-thousandths, with counts of decimal places). As in the
reports, a zero part makes no split row but counts in the total. ``rl_deal_credit`` keeps each
deal's own sums, so that a change can take them back out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from projections.credit.data import (
    ACCOUNTS_PER_BATCH,
    LEADS_PER_QUERY,
    TOUCH_COLUMNS,
    UNIT,
    Contact,
    CreditData,
    Deal,
    read_contacts,
)
from projections.credit.journeys import ORDER, Crediting, Touch, credit_key
from projections.credit.options import CreditOptions
from projections.opportunities import to_units
from projections.periods import FOREVER
from projections.schema import Tables

CREDIT_KEY = ("metric", "split", "day", "until", "type", "currency", "key")
CreditKey = tuple[str, str, int, int, str, str, str]
Counts = Counter[tuple[CreditKey, str]]
SPLITS = ("campaign", "channel")
TOTAL = "total"
NEVER = 2**31 - 1  # the ``until`` of a milestone no later close can take back
DAY_US = 86_400_000_000
KEPT = CreditOptions()
_CREDITING = Crediting(KEPT.model)


def kept(options: CreditOptions) -> bool:
    """Whether the projection keeps the credit these options ask for (the default model)."""
    return options.model == KEPT.model and options.lookback_days == KEPT.lookback_days


def amount_counts(out: Counter[tuple[Any, str]], key: Any, amount: str, sign: int) -> None:
    """Add an exact decimal amount (written out) to ``key``'s units and decimal-place counts."""
    units, places = _measured_amount(amount)
    out[(key, "units")] += sign * units
    if places:
        out[(key, places)] += sign


@lru_cache(maxsize=4096)
def _measured_amount(amount: str) -> tuple[int, str | None]:
    """An amount's ten-thousandths, and the measure counting its decimal places (if any)."""
    places = len(amount) - amount.index(".") - 1 if "." in amount else 0
    measure = "odd" if places > 4 else f"d{places}" if places else None
    return to_units(Decimal(amount)), measure


def _parts(
    out: Counts,
    head: tuple[str, int, int, str, str],
    parts: Sequence[tuple[Touch | None, Decimal]],
) -> None:
    """Add one credited deal's ``parts`` under ``head`` (metric, day, until, type, currency)."""
    metric, day, until, opp_type, currency = head
    total: CreditKey = (metric, TOTAL, day, until, opp_type, currency, "")
    out[(total, "deals")] += 1
    seen: set[CreditKey] = set()
    untouched = False
    for touch, part in parts:
        units, places = _measured_amount(format(part, "f"))
        out[(total, "units")] += units
        if places:
            out[(total, places)] += 1
        if not part:
            continue  # a touch the model gives no weight: no row, as in the reports
        untouched = untouched or touch is None
        for split in SPLITS:
            key: CreditKey = (
                metric,
                split,
                day,
                until,
                opp_type,
                currency,
                credit_key(touch, split),
            )
            out[(key, "units")] += units
            if places:
                out[(key, places)] += 1
            if touch is not None:
                out[(key, "touches")] += 1
            seen.add(key)
    for key in seen:
        out[(key, "deals")] += 1
    if untouched:
        out[(total, "touches")] += 1


def credit_counts(data: CreditData, deal: Deal, closes: Iterable[Mapping[Any, Any]]) -> Counts:
    """One current deal's ``rl_roll_credit`` sums: at its opening, and at each won close."""
    out: Counts = Counter()
    lookback = KEPT.lookback_days
    journey = data.journey(deal, "pipeline", lookback)
    assert journey is not None  # the opening is always a milestone
    day = deal.opened_us // DAY_US
    for metric in ("pipeline", "deals"):
        amount, currency = deal.value(metric)
        parts = _CREDITING.split(journey, amount, UNIT[metric])
        _parts(out, (metric, day, NEVER, deal.opp_type, currency or ""), parts)
    listed = sorted(closes, key=itemgetter("seq"))
    for i, close in enumerate(listed):
        if close["kind"] != "won" or close["amount"] is None or not close["currency"]:
            continue
        at = close["at_us"]
        until = listed[i + 1]["at_us"] // DAY_US if i + 1 < len(listed) else NEVER
        won = deal._replace(
            outcome="won",
            closed_us=at,
            won_amount=Decimal(close["amount"]),
            won_currency=close["currency"],
        )
        journey = data.journey(won, "revenue", lookback)
        assert journey is not None
        amount, currency = won.value("revenue")
        parts = _CREDITING.split(journey, amount, UNIT["revenue"])
        _parts(out, ("revenue", at // DAY_US, until, deal.opp_type, currency or ""), parts)
    return out


def deal_data(
    conn: sa.Connection, t: Tables, deals: Sequence[Deal], *, touches: bool
) -> CreditData:
    """``deals`` with their linked leads' current contact rows (and touches), as reports read them.

    The contacts of the deals' accounts, then the named leads not among them, in batches; the
    touches of all of those leads, by lead.
    """
    contact = t["contact"]
    current = contact.c.known_to == FOREVER
    contacts: dict[str, Contact] = {}
    accounts = sorted({deal.account_id for deal in deals})
    for start in range(0, len(accounts), ACCOUNTS_PER_BATCH):
        chunk = accounts[start : start + ACCOUNTS_PER_BATCH]
        contacts.update(read_contacts(conn, contact, current, "account_id", chunk))
    named = {lead for deal in deals for lead in (*deal.lead_ids, *deal.contact_ids)}
    missing = sorted(named - contacts.keys())
    for start in range(0, len(missing), LEADS_PER_QUERY):
        chunk = missing[start : start + LEADS_PER_QUERY]
        contacts.update(read_contacts(conn, contact, current, "lead_id", chunk))
    found: dict[str, list[Touch]] = {}
    if touches:
        touch = t["touch"]
        query = sa.select(*(touch.c[n] for n in TOUCH_COLUMNS))
        leads = sorted(contacts.keys() | named)
        for start in range(0, len(leads), LEADS_PER_QUERY):
            chunk = leads[start : start + LEADS_PER_QUERY]
            kept_rows = query.where(touch.c.known_to == FOREVER, touch.c.lead_id.in_(chunk))
            for row in conn.execute(kept_rows):
                found.setdefault(row[0], []).append(Touch(*row))
        for listed in found.values():
            listed.sort(key=ORDER)
    return CreditData({deal.opportunity_id: deal for deal in deals}, contacts, found, {})
