"""The credit tables as a report sees them: as known at its ledger time, as of its business cap.

Deals, their closes, leads' accounts and touches, and campaigns are read in a few queries and
joined in memory: a deal's linked leads are its account's leads plus its ``lead_ids`` and
``contact_ids`` (docs/credit.md, "Journeys").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
import sqlalchemy as sa

from projections.credit.journeys import DAY_US, Journey, Touch
from projections.errors import ReportError
from projections.reading import Reader
from projections.window import Window

UNIT = {"pipeline": None, "revenue": None, "deals": Decimal("0.0001")}


@dataclass(frozen=True)
class Deal:
    """An opportunity at its creation, and how it stands at the as-of cap."""

    opportunity_id: str
    account_id: str
    opp_type: str
    opened_us: int
    amount: Decimal
    currency: str
    lead_ids: tuple[str, ...]
    contact_ids: tuple[str, ...]
    outcome: str | None = None  # won | lost at the cap; None while open
    closed_us: int | None = None
    won_amount: Decimal | None = None
    won_currency: str | None = None

    def milestone(self, metric: str) -> int | None:
        """When the deal earns credit: opened (pipeline, deals) or won (revenue; None if not)."""
        if metric != "revenue":
            return self.opened_us
        return self.closed_us if self.outcome == "won" else None

    def value(self, metric: str) -> tuple[Decimal, str | None]:
        """What is credited: the opened amount, the won amount, or one deal (no currency)."""
        if metric == "deals":
            return Decimal(1), None
        if metric == "revenue":
            assert self.won_amount is not None
            return self.won_amount, self.won_currency
        return self.amount, self.currency


@dataclass(frozen=True)
class Contact:
    """A lead's account, first capture time and lead source."""

    lead_id: str
    account_id: str | None
    captured_us: int | None
    lead_source: str | None


@dataclass
class CreditData:
    """Everything the credit of deals depends on, as one report sees it."""

    deals: dict[str, Deal]
    contacts: dict[str, Contact]
    touches: dict[str, list[Touch]]  # per lead, in order
    campaigns: dict[str, tuple[str, str]]  # campaign id -> (name, channel)
    by_account: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Index leads by account."""
        for contact in self.contacts.values():
            if contact.account_id is not None:
                self.by_account.setdefault(contact.account_id, []).append(contact.lead_id)

    def linked(self, deal: Deal) -> dict[str, str]:
        """The deal's linked leads, each with why: ``lead_ids``, ``contact_ids`` or ``account``."""
        found: dict[str, str] = {}
        for lead in deal.lead_ids:
            found.setdefault(lead, "lead_ids")
        for lead in deal.contact_ids:
            found.setdefault(lead, "contact_ids")
        for lead in self.by_account.get(deal.account_id, ()):
            found.setdefault(lead, "account")
        return found

    def touches_of(self, leads: Iterable[str]) -> list[Touch]:
        """Every known touch of ``leads``, in order."""
        return sorted((t for lead in leads for t in self.touches.get(lead, ())), key=Touch.order)

    def journey(self, deal: Deal, metric: str, lookback_days: int) -> Journey | None:
        """The deal's journey to its credited milestone (None: a revenue milestone not reached)."""
        milestone = deal.milestone(metric)
        if milestone is None:
            return None
        start = deal.opened_us - lookback_days * DAY_US
        leads = self.linked(deal)
        touches = [t for t in self.touches_of(leads) if start <= t.at_us <= milestone]
        captures = [
            (c.captured_us, lead)
            for lead in leads
            if (c := self.contacts.get(lead)) is not None
            and c.captured_us is not None
            and start <= c.captured_us <= milestone
        ]
        created = min(captures, default=None)
        return Journey(
            tuple(touches),
            milestone,
            deal.opened_us,
            won_us=milestone if metric == "revenue" else None,
            created=(created[1], created[0]) if created else None,
        )

    def campaign_name(self, campaign_id: str | None) -> str:
        """A campaign's name ("" when the ledger holds no ``campaign_created`` for it)."""
        return self.campaigns.get(campaign_id or "", ("", ""))[0]


def check_tables(reader: Reader) -> None:
    """Refuse to report from a projection built before the credit tables existed."""
    reader.position()
    with reader.engine.connect() as conn:
        if not sa.inspect(conn).has_table(reader.tables["touch"].name, schema=reader.schema):
            msg = "the projection predates the credit tables; run 'revledger rebuild' once"
            raise ReportError(msg)


def _closes(
    reader: Reader, window: Window
) -> dict[str, list[tuple[str, int, Decimal | None, str]]]:
    close = reader.tables["close"]
    query = (
        sa.select(
            close.c.opportunity_id, close.c.kind, close.c.at_us, close.c.amount, close.c.currency
        )
        .where(window.known(close), close.c.at_us < window.cap)
        .order_by(close.c.opportunity_id, close.c.seq)
    )
    out: dict[str, list[tuple[str, int, Decimal | None, str]]] = defaultdict(list)
    for opp, kind, at, amount, currency in reader.rows(query):
        out[opp].append((kind, at, None if amount is None else Decimal(amount), currency))
    return out


def load_deals(reader: Reader, window: Window) -> dict[str, Deal]:
    """Every opportunity opened before the cap, with its outcome at the cap."""
    deal = reader.tables["deal"]
    closes = _closes(reader, window)
    query = sa.select(
        *(
            deal.c[n]
            for n in (
                "opportunity_id",
                "account_id",
                "opp_type",
                "opened_us",
                "amount",
                "currency",
                "lead_ids",
                "contact_ids",
            )
        )
    ).where(window.known(deal), deal.c.opened_us < window.cap)
    out: dict[str, Deal] = {}
    for opp, account, kind, opened, amount, currency, leads, contacts in reader.rows(query):
        state: dict[str, object] = {}
        for close_kind, at, won, won_currency in closes.get(opp, ()):
            if close_kind == "reopened":
                state = {}
            else:
                state = {"outcome": close_kind, "closed_us": at}
                if close_kind == "won":
                    state |= {"won_amount": won, "won_currency": won_currency}
        out[opp] = Deal(
            opp,
            account,
            kind,
            opened,
            Decimal(amount),
            currency,
            tuple(orjson.loads(leads)),
            tuple(orjson.loads(contacts)),
            **state,  # type: ignore[arg-type]
        )
    return out


CHUNK = 500
TOUCH_COLUMNS = ("lead_id", "at_us", "channel", "campaign_id", "touch_type", "source", "source_id")


def _contacts_and_touches(
    reader: Reader, window: Window, deals: dict[str, Deal]
) -> tuple[dict[str, Contact], dict[str, list[Touch]]]:
    """The leads linked to some deal (by account, then by id), and their touches before the cap."""
    t = reader.tables
    contact, touch, deal = t["contact"], t["touch"], t["deal"]
    accounts = sa.select(deal.c.account_id).where(window.known(deal), deal.c.opened_us < window.cap)
    contact_columns = [
        contact.c[n] for n in ("lead_id", "account_id", "captured_us", "lead_source")
    ]
    touch_columns = [touch.c[n] for n in TOUCH_COLUMNS]
    seen = sa.and_(window.known(touch), touch.c.at_us < window.cap)
    by_account = window.known(contact), contact.c.account_id.in_(accounts)
    contacts = {
        row[0]: Contact(*row) for row in reader.rows(sa.select(*contact_columns).where(*by_account))
    }
    rows = reader.rows(
        sa.select(*touch_columns)
        .join(contact, contact.c.lead_id == touch.c.lead_id)
        .where(seen, *by_account)
    )
    explicit = sorted({lead for d in deals.values() for lead in (*d.lead_ids, *d.contact_ids)})
    missing = [lead for lead in explicit if lead not in contacts]
    for start in range(0, len(missing), CHUNK):
        chunk = missing[start : start + CHUNK]
        query = sa.select(*contact_columns).where(
            window.known(contact), contact.c.lead_id.in_(chunk)
        )
        contacts.update((row[0], Contact(*row)) for row in reader.rows(query))
        rows += reader.rows(sa.select(*touch_columns).where(seen, touch.c.lead_id.in_(chunk)))
    touches: dict[str, list[Touch]] = defaultdict(list)
    for row in rows:
        touches[row[0]].append(Touch(*row))
    for found in touches.values():
        found.sort(key=Touch.order)
    return contacts, dict(touches)


def load_campaigns(reader: Reader, window: Window) -> dict[str, tuple[str, str]]:
    """Campaign id -> (name, channel), from the latest ``campaign_created``."""
    campaign = reader.tables["campaign"]
    query = sa.select(campaign.c.campaign_id, campaign.c.name, campaign.c.channel)
    return {row[0]: (row[1], row[2]) for row in reader.rows(query.where(window.known(campaign)))}


def load(reader: Reader, window: Window) -> CreditData:
    """Deals, their linked leads' accounts and touches, and campaigns, as ``window`` sees them."""
    check_tables(reader)
    deals = load_deals(reader, window)
    contacts, touches = _contacts_and_touches(reader, window, deals)
    return CreditData(deals, contacts, touches, load_campaigns(reader, window))
