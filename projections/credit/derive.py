"""Derive the credit tables of one subject from its facts, over ledger time.

The same contract as the funnel's derivers (:mod:`projections.history`): a pure function of the
subject's families (a fact and its corrections), giving every row with the ledger-time span it was
known for, so rebuild and incremental catch-up write the same rows. Only the families whose root
fact feeds a credit table are read (a correction never changes a fact's type), which keeps the
extra derivation cheap. Column meanings: :mod:`projections.credit.tables`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

import orjson

from ledger.events import Fact
from projections.corrections import Family
from projections.history import versioned_rows
from projections.periods import to_us

Row = tuple[Any, ...]
Deriver = Callable[[Sequence[Fact]], dict[str, set[Row]]]

CREDIT_KINDS = {"campaign_id": "campaign", "account_id": "account"}  # beyond lead and opp
TABLES_BY_KIND = {
    "lead": ("touch", "contact"),
    "opp": ("deal", "close", "link"),
    "campaign": ("campaign", "spend"),
    "account": ("arr",),
}
CLOSES = {"opportunity_won": "won", "opportunity_lost": "lost", "opportunity_reopened": "reopened"}
ARR_KINDS = {
    "contract_started": "new",
    "contract_expanded": "expansion",
    "contract_contracted": "contraction",
    "contract_churned": "churn",
}


def _money(value: Any) -> str | None:
    return None if value is None else format(value, "f")


def derive_lead_credit(facts: Sequence[Fact]) -> dict[str, set[Row]]:
    """A lead's touches, and its account, first capture, lead source and first touch.

    The account, capture and lead source are the latest values; every touch row carries the
    account too, so that a report reads an account's touches without joining its leads; the
    first touch is the earliest in the order ``(at, source, source_id)``.
    """
    touches: list[Row] = []
    contact: dict[str, Any] = {"account_id": None, "captured_us": None, "lead_source": None}
    known = False
    for fact in facts:
        at = to_us(fact.occurred_at)
        values = vars(fact)
        if fact.type_name == "touch_recorded":
            touches.append(
                (
                    fact.source,
                    fact.source_id,
                    at,
                    values["channel"],
                    values.get("campaign_id"),
                    values["touch_type"],
                )
            )
            continue
        known = True
        if fact.type_name == "lead_captured":
            first = contact["captured_us"]
            contact["captured_us"] = at if first is None else min(first, at)
        attributes = values.get("attributes") or {}
        for name in ("account_id", "lead_source"):
            value = values.get(name) or attributes.get(name)
            if value not in (None, ""):
                contact[name] = str(value)
    account = contact["account_id"]
    rows: dict[str, set[Row]] = {"touch": {(*touch, account) for touch in touches}}
    if known:
        first_touch = min(touches, key=lambda t: (t[2], t[0], t[1]), default=None)
        firsts = (None, None, None) if first_touch is None else itemgetter(2, 3, 5)(first_touch)
        rows["contact"] = {(account, contact["captured_us"], contact["lead_source"], *firsts)}
    return rows


def derive_opp_credit(facts: Sequence[Fact]) -> dict[str, set[Row]]:
    """An opportunity's creation, its closes after it, and the leads it names.

    The creation is its first ``opportunity_opened``; the named leads are its ``lead_ids`` and
    ``contact_ids``.
    """
    deal: Row | None = None
    closes: list[Row] = []
    for fact in facts:
        values = vars(fact)
        if fact.type_name == "opportunity_opened" and deal is None:
            deal = (
                values["account_id"],
                values["opportunity_type"],
                to_us(fact.occurred_at),
                _money(values["amount"]),
                values["currency"],
                orjson.dumps(list(values.get("lead_ids") or ())).decode(),
                orjson.dumps(list(values.get("contact_ids") or ())).decode(),
            )
        elif deal is not None and fact.type_name in CLOSES:
            closes.append(
                (
                    len(closes),
                    to_us(fact.occurred_at),
                    CLOSES[fact.type_name],
                    _money(values.get("amount")),
                    values.get("currency"),
                    fact.source,
                    fact.source_id,
                )
            )
    if deal is None:
        return {}
    named = {*orjson.loads(deal[5]), *orjson.loads(deal[6])}
    return {"deal": {deal}, "close": set(closes), "link": {(lead,) for lead in named}}


def derive_campaign(facts: Sequence[Fact]) -> dict[str, set[Row]]:
    """A campaign's name and channel (latest ``campaign_created``) and its spend records."""
    campaign: set[Row] = set()
    spend: set[Row] = set()
    for fact in facts:
        values = vars(fact)
        if fact.type_name == "campaign_created":
            campaign = {(values["name"], values["channel"], values.get("campaign_type"))}
        elif fact.type_name == "campaign_spend_recorded":
            spend.add(
                (
                    fact.source,
                    fact.source_id,
                    to_us(fact.occurred_at),
                    _money(values["amount"]),
                    values["currency"],
                    values["period_start"].isoformat(),
                    values["period_end"].isoformat(),
                )
            )
    return {"campaign": campaign, "spend": spend}


def derive_account(facts: Sequence[Fact]) -> dict[str, set[Row]]:
    """An account's recurring-revenue movements: new, expansion, contraction, churn."""
    rows: set[Row] = set()
    for fact in facts:
        kind = ARR_KINDS.get(fact.type_name)
        if kind is None:
            continue
        values = vars(fact)
        rows.add(
            (
                fact.source,
                fact.source_id,
                to_us(fact.occurred_at),
                kind,
                _money(values["arr"] if kind == "new" else values["amount"]),
                values["currency"],
                values["contract_id"],
                values.get("opportunity_id"),
            )
        )
    return {"arr": rows}


DERIVERS: dict[str, Deriver] = {
    "lead": derive_lead_credit,
    "opp": derive_opp_credit,
    "campaign": derive_campaign,
    "account": derive_account,
}
FEEDS = {
    "lead": frozenset({"touch_recorded", "lead_captured", "lead_updated"}),
    "opp": frozenset({"opportunity_opened", *CLOSES}),
    "campaign": frozenset({"campaign_created", "campaign_spend_recorded"}),
    "account": frozenset(ARR_KINDS),
}


def credit_rows(families: Iterable[Family], kind: str, subject: str) -> dict[str, list[Row]]:
    """Every credit row of ``subject`` over ledger time, with (known_from, known_to) appended."""
    feeds = FEEDS[kind]
    wanted = [family for family in families if family.root.type_name in feeds]
    return versioned_rows(wanted, DERIVERS[kind], subject)
