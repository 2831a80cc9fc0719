"""The credit tables as a report sees them: as known at its ledger time, as of its business cap.

A report reads only what its periods need (docs/credit.md, "Reading"):

1. the deals whose milestone can fall in the window, in one query: opened in it, or with a close
   of the kinds it asks for (``won`` for revenue credit) in it, with their closes before the cap
   (:func:`select_deals`; a deal's outcome at the cap is its last close);
2. their accounts, a batch at a time (:func:`batches`): each account's leads with their touches
   (from the earliest journey start in the batch, or every touch before the cap), plus the
   leads named in ``lead_ids``/``contact_ids`` that are not among them, read by id. A batch is
   a :class:`CreditData` holding everything its deals' credit depends on; memory is bounded by
   the batch, not by the ledger.

A deal's linked leads are its account's leads plus its ``lead_ids`` and ``contact_ids``
(docs/credit.md, "Journeys"). When those ids are all leads of the account (the usual case), the
account's touches are sorted once and each deal's journey is a slice of them.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
import sqlalchemy as sa

from projections.credit.journeys import DAY_US, ORDER, Journey, Touch
from projections.credit.tables import CONTACT_READ
from projections.errors import ReportError
from projections.window import Window

if TYPE_CHECKING:  # the projection's tables import this module's readers (projections.rollup)
    from projections.reading import Reader

UNIT = {"pipeline": None, "revenue": None, "deals": Decimal("0.0001")}
ACCOUNTS_PER_BATCH = 900  # bound parameters per query stay under SQLite's historical 999
LEADS_PER_QUERY = 500


class Deal(NamedTuple):
    """An opportunity at its creation, and how it stands at the as-of cap.

    A tuple of plain values, like :class:`Contact` and the touches, so that the garbage
    collector stops tracking it: a report holds every deal of its window.
    """

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


class Contact(NamedTuple):
    """A lead's account, first capture time, lead source and first touch (time, channel, type)."""

    lead_id: str
    account_id: str | None
    captured_us: int | None
    lead_source: str | None
    first_touch_us: int | None = None
    first_channel: str | None = None
    first_touch_type: str | None = None


class Journal(NamedTuple):
    """An account's leads' touches in order (with their times) and captures, for slicing."""

    ats: list[int]
    touches: list[Touch]
    captures: list[tuple[int, str]]  # (captured_us, lead id), in order


@dataclass
class CreditData:
    """Everything the credit of some deals depends on, as one report sees it."""

    deals: dict[str, Deal]
    contacts: dict[str, Contact]
    touches: dict[str, list[Touch]]  # per lead, in order
    campaigns: dict[str, tuple[str, str]]  # campaign id -> (name, channel)
    by_account: dict[str, list[str]] = field(default_factory=dict)
    journals: dict[str, Journal] = field(default_factory=dict)

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
        return sorted((t for lead in leads for t in self.touches.get(lead, ())), key=ORDER)

    def journal(self, deal: Deal) -> Journal | None:
        """The deal's account's journal, when its linked leads are exactly the account's leads."""
        contact_of = self.contacts.get
        for lead in (*deal.lead_ids, *deal.contact_ids):
            contact = contact_of(lead)
            if contact is None or contact.account_id != deal.account_id:
                return None
        journal = self.journals.get(deal.account_id)
        if journal is None:
            leads = self.by_account.get(deal.account_id, ())
            touches = sorted(
                itertools.chain.from_iterable(self.touches.get(lead, ()) for lead in leads),
                key=ORDER,
            )
            captures = sorted(
                (c.captured_us, lead)
                for lead in leads
                if (c := self.contacts[lead]).captured_us is not None
            )
            journal = Journal([t.at_us for t in touches], touches, captures)
            self.journals[deal.account_id] = journal
        return journal

    def journey(self, deal: Deal, metric: str, lookback_days: int) -> Journey | None:
        """The deal's journey to its credited milestone (None: a revenue milestone not reached)."""
        milestone = deal.milestone(metric)
        if milestone is None:
            return None
        start = deal.opened_us - lookback_days * DAY_US
        journal = self.journal(deal)
        created: tuple[int, str] | None
        if journal is not None:
            ats, captures = journal.ats, journal.captures
            touches = tuple(journal.touches[bisect_left(ats, start) : bisect_right(ats, milestone)])
            i = bisect_left(captures, (start,))
            created = captures[i] if i < len(captures) and captures[i][0] <= milestone else None
        else:
            leads = self.linked(deal)
            touches = tuple(t for t in self.touches_of(leads) if start <= t.at_us <= milestone)
            created = min(
                (
                    (c.captured_us, lead)
                    for lead in leads
                    if (c := self.contacts.get(lead)) is not None
                    and c.captured_us is not None
                    and start <= c.captured_us <= milestone
                ),
                default=None,
            )
        return Journey(
            touches,
            milestone,
            deal.opened_us,
            won_us=milestone if metric == "revenue" else None,
            created=(created[1], created[0]) if created else None,
        )

    def campaign_name(self, campaign_id: str | None) -> str:
        """A campaign's name ("" when the ledger holds no ``campaign_created`` for it)."""
        return self.campaigns.get(campaign_id or "", ("", ""))[0]


def check_tables(reader: Reader) -> None:
    """Refuse to report from a projection built before the credit tables (as they are) existed."""
    reader.position()
    if not reader.has_column("touch", "account_id"):
        msg = "the projection predates the credit tables; run 'revledger rebuild' once"
        raise ReportError(msg)


@dataclass(frozen=True)
class Wanted:
    """What a report reads: the deals whose milestones can fall in its window, and their leads.

    ``opened``: deals opened in the window; ``closed``: deals with a close of one of these kinds
    in the window; ``spans``: in these ranges ``[lo, hi)`` instead of the window's periods;
    ``types``: only these opportunity types (None: all); ``opportunity_id``: that deal alone,
    whenever it opened (before the cap); ``opportunity_ids``: those deals. ``journeys``: read
    the leads' touches too (the sourced rule needs only the leads, which carry their first
    touch); ``lookback_days``: from the earliest journey start of a batch (None: every touch
    before the cap).
    """

    opened: bool = True
    closed: tuple[str, ...] = ()
    types: tuple[str, ...] | None = None
    opportunity_id: str | None = None
    journeys: bool = True
    lookback_days: int | None = None
    spans: tuple[tuple[int, int], ...] | None = None
    opportunity_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Reading:
    """One report's reads: its connection, the projection's tables, its window, what it wants."""

    conn: sa.Connection
    reader: Reader
    window: Window
    wanted: Wanted

    def table(self, name: str) -> sa.Table:
        """The live projection table called ``name``."""
        return self.reader.tables[name]


DEAL_COLUMNS = (
    "opportunity_id",
    "account_id",
    "opp_type",
    "opened_us",
    "amount",
    "currency",
    "lead_ids",
    "contact_ids",
)


def _deal_query(reading: Reading) -> sa.Select[Any] | None:
    """Deals (outer-joined to their closes before the cap, in order), or None: no deal wanted."""
    window, wanted = reading.window, reading.wanted
    deal, close = reading.table("deal"), reading.table("close")
    where = [window.known(deal), deal.c.opened_us < window.cap]
    if wanted.types is not None:
        where.append(deal.c.opp_type.in_(wanted.types))
    if wanted.opportunity_id is not None:
        where.append(deal.c.opportunity_id == wanted.opportunity_id)
    elif wanted.opportunity_ids is not None:
        where.append(deal.c.opportunity_id.in_(wanted.opportunity_ids))
    else:
        if not window.periods:
            return None
        spans = wanted.spans or ((window.periods[0].start, window.periods[-1].end),)
        picks = []
        if wanted.opened:
            picks += [sa.and_(deal.c.opened_us >= lo, deal.c.opened_us < hi) for lo, hi in spans]
        if wanted.closed:
            inner = close.alias("closed")
            within = sa.or_(*(sa.and_(inner.c.at_us >= lo, inner.c.at_us < hi) for lo, hi in spans))
            closed = sa.select(inner.c.opportunity_id).where(window.known(inner), within)
            picks.append(deal.c.opportunity_id.in_(closed.where(inner.c.kind.in_(wanted.closed))))
        if not picks:
            return None
        where.append(sa.or_(*picks))
    joined = deal.outerjoin(
        close,
        sa.and_(
            close.c.opportunity_id == deal.c.opportunity_id,
            window.known(close),
            close.c.at_us < window.cap,
        ),
    )
    columns = [deal.c[n] for n in DEAL_COLUMNS]
    closes = [close.c.kind, close.c.at_us, close.c.amount, close.c.currency]
    return (
        sa.select(*columns, *closes)
        .select_from(joined)
        .where(*where)
        .order_by(deal.c.opportunity_id, close.c.seq)
    )


def select_deals(reading: Reading) -> dict[str, Deal]:
    """The deals wanted, each with its outcome at the cap (its last close before it)."""
    query = _deal_query(reading)
    if query is None:
        return {}
    out: dict[str, Deal] = {}
    for opp, rows in itertools.groupby(reading.conn.execute(query), key=itemgetter(0)):
        first = None
        state: dict[str, Any] = {}
        for row in rows:
            if first is None:
                first = row
            kind, at, won, won_currency = row[8:]
            if kind is None:
                continue  # no close: the outer join's empty side
            if kind == "reopened":
                state = {}
            else:
                state = {"outcome": kind, "closed_us": at}
                if kind == "won":
                    amount = None if won is None else Decimal(won)
                    state |= {"won_amount": amount, "won_currency": won_currency}
        assert first is not None
        _, account, kind, opened, amount, currency, leads, contacts = first[:8]
        out[opp] = Deal(
            opp,
            account,
            kind,
            opened,
            Decimal(amount),
            currency,
            tuple(orjson.loads(leads)),
            tuple(orjson.loads(contacts)),
            **state,
        )
    return out


CONTACT_COLUMNS = ("lead_id", "account_id", *CONTACT_READ[1:])
TOUCH_COLUMNS = ("lead_id", "at_us", "channel", "campaign_id", "touch_type", "source", "source_id")
_tuple = tuple.__new__  # builds a Contact or Touch from a row in its column order, without a call
Leads = tuple[dict[str, Contact], dict[str, list[Touch]]]


def read_contacts(
    conn: sa.Connection,
    contact: sa.Table,
    known: sa.ColumnElement[bool],
    by: str,
    ids: list[str],
) -> Iterator[tuple[str, Contact]]:
    """The ``known`` contact rows whose ``by`` (``account_id`` or ``lead_id``) is in ``ids``."""
    query = sa.select(*(contact.c[n] for n in CONTACT_COLUMNS)).where(known, contact.c[by].in_(ids))
    for row in conn.execute(query):
        yield row[0], _tuple(Contact, row)


def _read_leads(reading: Reading, by: str, ids: list[str], since: int | None, into: Leads) -> None:
    """Add the leads whose ``by`` (``account_id`` or ``lead_id``) is in ``ids``, and touches.

    The touches (when journeys are wanted) are those from ``since`` to the cap. By account,
    both come from covering indexes: an account's rows are adjacent, and the tables are not
    read.
    """
    window = reading.window
    contact, touch = reading.table("contact"), reading.table("touch")
    contacts, touches = into
    contacts.update(read_contacts(reading.conn, contact, window.known(contact), by, ids))
    if reading.wanted.journeys:
        kept = [window.known(touch), touch.c[by].in_(ids), touch.c.at_us < window.cap]
        if since is not None:
            kept.append(touch.c.at_us >= since)
        query = sa.select(*(touch.c[n] for n in TOUCH_COLUMNS)).where(*kept)
        for row in reading.conn.execute(query):
            touches[row[0]].append(_tuple(Touch, row))


def batches(
    reading: Reading, deals: dict[str, Deal], campaigns: dict[str, tuple[str, str]]
) -> Iterator[CreditData]:
    """``deals`` with everything their credit depends on, a batch of accounts at a time.

    A batch reads its accounts' leads (and their touches), then the leads its deals name in
    ``lead_ids``/``contact_ids`` that are not among them, by id.
    """
    lookback = reading.wanted.lookback_days
    by_account: dict[str, list[Deal]] = defaultdict(list)
    for deal in deals.values():
        by_account[deal.account_id].append(deal)
    accounts = sorted(by_account)
    for start in range(0, len(accounts), ACCOUNTS_PER_BATCH):
        chunk = accounts[start : start + ACCOUNTS_PER_BATCH]
        batch = {d.opportunity_id: d for account in chunk for d in by_account[account]}
        since = None
        if lookback is not None:
            since = min(d.opened_us for d in batch.values()) - lookback * DAY_US
        found: Leads = ({}, defaultdict(list))
        _read_leads(reading, "account_id", chunk, since, found)
        named = {lead for d in batch.values() for lead in (*d.lead_ids, *d.contact_ids)}
        missing = sorted(named - found[0].keys())
        for first in range(0, len(missing), LEADS_PER_QUERY):
            _read_leads(reading, "lead_id", missing[first : first + LEADS_PER_QUERY], since, found)
        contacts, touches = found
        for listed in touches.values():
            listed.sort(key=ORDER)
        yield CreditData(batch, contacts, touches, campaigns)


def load_campaigns(reader: Reader, window: Window) -> dict[str, tuple[str, str]]:
    """Campaign id -> (name, channel), from the latest ``campaign_created``."""
    campaign = reader.tables["campaign"]
    query = sa.select(campaign.c.campaign_id, campaign.c.name, campaign.c.channel)
    return {row[0]: (row[1], row[2]) for row in reader.rows(query.where(window.known(campaign)))}


def read(
    reader: Reader, window: Window, wanted: Wanted, campaigns: dict[str, tuple[str, str]]
) -> Iterator[CreditData]:
    """The deals ``wanted`` and what their credit depends on, in batches (:func:`batches`).

    Every query runs on one connection.
    """
    with reader.engine.connect() as conn:
        reading = Reading(conn, reader, window, wanted)
        yield from batches(reading, select_deals(reading), campaigns)


def load_deal(reader: Reader, window: Window, opportunity_id: str) -> CreditData:
    """One deal (if it opened before the cap) with all its linked leads' touches before the cap."""
    check_tables(reader)
    campaigns = load_campaigns(reader, window)
    found = list(read(reader, window, Wanted(opportunity_id=opportunity_id), campaigns))
    return found[0] if found else CreditData({}, {}, {}, campaigns)
