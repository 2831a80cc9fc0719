"""How the credit reports read, checked against reading everything (docs/credit.md, "Reading").

Reports read only the deals whose milestone can fall in the window, their accounts' leads and
touches in batches, slice journeys from an account's sorted touches, and weigh touches with the
models' integer fast path. Everything must give what reading the whole projection and computing
each journey from scratch gives.

The oracle below is that whole reading, the way the reports did it before: every deal opened
before the cap, every lead and touch as known, joined in memory, each journey from its linked
leads (no account slicing), each sourced decision from the loaded touches.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import projections.credit.credited as credited_module
import projections.credit.data as data_module
import projections.credit.revenue as revenue_module
import projections.credit.sourced as sourced_module
from ledger import open_ledger, parse_fact
from ledger.storage import parse_url
from projections.api import Reports
from projections.credit.allocation import allocate
from projections.credit.audit import audit_deal
from projections.credit.data import Contact, CreditData, Deal, Reading
from projections.credit.journeys import DAY_US, Crediting, Journey, Share, Touch, credit
from projections.credit.models import MODEL_NAMES, Model, model_from_mapping, named_model
from projections.credit.options import CreditOptions
from projections.errors import ReportError
from projections.periods import Calendar
from projections.reading import Reader
from projections.runner import Projection
from projections.window import ReportOptions, Window

START = datetime(2025, 1, 1, tzinfo=UTC)
REPORTS = ("attribution", "spend", "sourced", "revenue")

# --- the oracle: read everything, join in memory ----------------------------------------------


def oracle_data(reader: Reader, window: Window) -> CreditData:
    """Every deal opened before the cap, every lead and touch, as the window sees them."""
    t = reader.tables
    deal, close, contact, touch, campaign = (
        t[n] for n in ("deal", "close", "contact", "touch", "campaign")
    )
    closes: dict[str, list[Any]] = defaultdict(list)
    query = (
        sa.select(
            close.c.opportunity_id, close.c.kind, close.c.at_us, close.c.amount, close.c.currency
        )
        .where(window.known(close), close.c.at_us < window.cap)
        .order_by(close.c.opportunity_id, close.c.seq)
    )
    for opp, kind, at, amount, currency in reader.rows(query):
        closes[opp].append((kind, at, None if amount is None else Decimal(amount), currency))
    deals = {}
    query = sa.select(*(deal.c[n] for n in data_module.DEAL_COLUMNS)).where(
        window.known(deal), deal.c.opened_us < window.cap
    )
    for opp, account, kind, opened, amount, currency, leads, contacts in reader.rows(query):
        state: dict[str, Any] = {}
        for close_kind, at, won, won_currency in closes.get(opp, ()):
            if close_kind == "reopened":
                state = {}
            else:
                state = {"outcome": close_kind, "closed_us": at}
                if close_kind == "won":
                    state |= {"won_amount": won, "won_currency": won_currency}
        deals[opp] = Deal(
            opp,
            account,
            kind,
            opened,
            Decimal(amount),
            currency,
            tuple(json.loads(leads)),
            tuple(json.loads(contacts)),
            **state,
        )
    touches: dict[str, list[Touch]] = defaultdict(list)
    columns = ("lead_id", "at_us", "channel", "campaign_id", "touch_type", "source", "source_id")
    query = sa.select(*(touch.c[n] for n in columns)).where(
        window.known(touch), touch.c.at_us < window.cap
    )
    for row in reader.rows(query):
        touches[row[0]].append(Touch(*row))
    for found in touches.values():
        found.sort(key=Touch.order)
    contacts = {}
    query = sa.select(
        contact.c.lead_id, contact.c.account_id, contact.c.captured_us, contact.c.lead_source
    ).where(window.known(contact))
    for lead, account, captured, source in reader.rows(query):
        first = touches[lead][0] if touches.get(lead) else None  # the first touch before the cap
        firsts = (first.at_us, first.channel, first.touch_type) if first else (None, None, None)
        contacts[lead] = Contact(lead, account, captured, source, *firsts)
    query = sa.select(campaign.c.campaign_id, campaign.c.name, campaign.c.channel)
    found = {r[0]: (r[1], r[2]) for r in reader.rows(query.where(window.known(campaign)))}
    return CreditData(deals, contacts, dict(touches), found)


def oracle_reports(url: str, options: ReportOptions, monkeypatch: pytest.MonkeyPatch) -> dict:  # noqa: C901 - one oracle, read top down
    """The four reports computed from :func:`oracle_data`, every journey from its linked leads."""

    def read(reader: Reader, window: Window, *_: Any) -> Iterator[CreditData]:
        yield oracle_data(reader, window)

    def revenue_exact(reading: Reading, lo: int, hi: int, tally: Any) -> None:
        """Revenue from every deal's outcome at the cap (its last close before it)."""
        for deal in oracle_data(reading.reader, reading.window).deals.values():
            index = tally.find(deal.opened_us) if lo <= deal.opened_us < hi else None
            if index is not None:
                tally.opened(index, deal.opp_type, deal.currency, 1)
            closed = deal.closed_us
            index = None if closed is None or not lo <= closed < hi else tally.find(closed)
            if index is None:
                continue
            if deal.outcome == "won" and deal.won_currency and deal.won_amount is not None:
                cycle = closed - deal.opened_us
                tally.won(index, deal.opp_type, deal.won_currency, 1, deal.won_amount, cycle)
            elif deal.outcome == "lost":
                tally.lost(index, deal.opp_type, deal.currency, 1)
        arr = reading.reader.tables["arr"]
        query = sa.select(arr.c.at_us, arr.c.kind, arr.c.amount, arr.c.currency).where(
            reading.window.known(arr), arr.c.at_us >= lo, arr.c.at_us < hi
        )
        for at, kind, amount, currency in reading.reader.rows(query):
            if (index := tally.find(at)) is not None:
                tally.arr(index, kind, currency, Decimal(amount))

    with monkeypatch.context() as patch:
        for module in (credited_module, sourced_module):
            patch.setattr(module, "read", read)
        patch.setattr(credited_module, "usable", lambda *_: False)
        patch.setattr(revenue_module, "usable", lambda *_: False)
        patch.setattr(revenue_module, "_exact", revenue_exact)
        patch.setattr(CreditData, "journal", lambda *_: None)
        return reports(url, options)


def reports(url: str, options: ReportOptions) -> dict:
    api = Reports(parse_url(url))
    try:
        return {name: (r.rows, r.notes) for name in REPORTS for r in [api.run(name, options)]}
    finally:
        api.close()


def same(left: dict, right: dict) -> bool:
    """Equal to the digit: repr tells 500.0 from 500.00."""
    return repr(left) == repr(right)


# --- generated ledgers -------------------------------------------------------------------------


def day(n: int, hour: int = 0) -> str:
    return (START + timedelta(days=n, hours=hour)).isoformat()


def when(draw: Any, low: int = 0, high: int = 250) -> str:
    """A day in steps of 15 days, at midnight or 10:00: ties, and instants on period bounds."""
    return day(draw(st.integers(low // 15, high // 15)) * 15, draw(st.sampled_from([0, 10])))


@st.composite
def ledgers(draw: Any) -> list[dict[str, Any]]:  # noqa: C901, PLR0912 - one strategy, top down
    """Leads that move between accounts, tied touches, deals naming other accounts' leads.

    Also closes and reopens, and corrections, all recorded at scattered ledger times.
    """
    records: list[dict[str, Any]] = []
    channels = ["web", "outbound", "paid_search"]
    for c, channel in enumerate(channels):
        records.append(
            {
                "type": "campaign_created",
                "campaign_id": f"C{c}",
                "name": f"n{c}",
                "channel": channel,
                "occurred_at": day(0),
            }
        )
    accounts = ["A0", "A1", "A2"]
    leads = [f"L{n}" for n in range(draw(st.integers(2, 7)))]
    for lead in leads:
        account = draw(st.sampled_from([*accounts, None]))
        captured = {
            "type": "lead_captured",
            "lead_id": lead,
            "occurred_at": when(draw),
        }
        if account:
            captured["account_id"] = account
        if draw(st.booleans()):
            captured["lead_source"] = draw(st.sampled_from(channels))
        records.append(captured)
        if draw(st.integers(0, 3)) == 0:
            records.append(
                {
                    "type": "lead_updated",
                    "lead_id": lead,
                    "attributes": {"account_id": draw(st.sampled_from(accounts))},
                    "occurred_at": when(draw),
                }
            )
        for _ in range(draw(st.integers(0, 4))):
            c = draw(st.integers(0, 2))
            records.append(
                {
                    "type": "touch_recorded",
                    "lead_id": lead,
                    "touch_type": draw(st.sampled_from(["visit", "call"])),
                    "channel": channels[c],
                    "campaign_id": f"C{c}",
                    "occurred_at": when(draw),
                }
            )
    for opp in range(draw(st.integers(2, 6))):
        opened = draw(st.integers(1, 16)) * 15
        record = {
            "type": "opportunity_opened",
            "opportunity_id": f"O{opp}",
            "account_id": draw(st.sampled_from(accounts)),
            "amount": draw(st.sampled_from(["1000.00", "10.5", "0.03", "333.333", "0"])),
            "currency": draw(st.sampled_from(["USD", "EUR"])),
            "opportunity_type": draw(st.sampled_from(["new", "new", "expansion", "renewal"])),
            "stage": "s",
            "occurred_at": day(opened),
        }
        if draw(st.booleans()):
            record["lead_ids"] = draw(st.lists(st.sampled_from([*leads, "L99"]), max_size=2))
        if draw(st.booleans()):
            record["contact_ids"] = draw(st.lists(st.sampled_from(leads), max_size=2))
        records.append(record)
        at = opened
        for _ in range(draw(st.integers(0, 3))):
            at += draw(st.sampled_from([0, 15, 30, 60]))
            kind = draw(
                st.sampled_from(
                    [
                        "opportunity_won",
                        "opportunity_won",
                        "opportunity_lost",
                        "opportunity_reopened",
                    ]
                )
            )
            close: dict[str, Any] = {
                "type": kind,
                "opportunity_id": f"O{opp}",
                "occurred_at": day(at),
            }
            if kind == "opportunity_won":
                close |= {"amount": draw(st.sampled_from(["99.99", "5.00"])), "currency": "USD"}
            elif kind == "opportunity_lost":
                close["reason"] = "price"
            records.append(close)
    for n, record in enumerate(records):
        record.update(
            source="gen",
            source_id=f"f{draw(st.integers(0, 9))}{n:03}",  # touch ties break on source_id
            actor="gen",
            recorded_at=datetime.fromisoformat(record["occurred_at"])
            + timedelta(days=draw(st.sampled_from([0, 1, 30, 90]))),
        )
    targets = [
        r for r in records if r["type"] in {"touch_recorded", "lead_updated", "lead_captured"}
    ]
    fixes = []
    for target in (
        draw(st.lists(st.sampled_from(targets), unique_by=id, max_size=3)) if targets else []
    ):
        base = {
            "source": "fix",
            "source_id": f"x{len(fixes)}",
            "actor": "ops",
            "occurred_at": START + timedelta(days=280),
            "target_source": "gen",
            "target_source_id": target["source_id"],
            "reason": "test",
            "recorded_at": target["recorded_at"] + timedelta(days=draw(st.integers(0, 30))),
        }
        if target["type"] == "touch_recorded" and draw(st.booleans()):
            fixes.append({"type": "fact_amended", "changes": {"campaign_id": "C2"}, **base})
        else:
            fixes.append({"type": "fact_retracted", **base})
    return records + fixes


def as_fact(record: dict[str, Any]) -> Any:
    return parse_fact(
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}
    )


def build(url: str, records: list[dict[str, Any]]) -> None:
    ledger = open_ledger(url)
    if records:
        ledger.record([as_fact(r) for r in records])
    projection = Projection(ledger)
    projection.catch_up()
    projection.close()
    ledger.close()


def option_sets(draw: Any) -> list[ReportOptions]:
    models = [named_model(n) for n in MODEL_NAMES if n != "time-decay"]
    models.append(named_model("time-decay", 3))
    models.append(model_from_mapping({"closed_won": 1}, "only-won"))
    out = []
    for _ in range(4):
        credit = CreditOptions(
            model=draw(st.sampled_from(models)),
            metric=draw(st.sampled_from(["pipeline", "revenue", "deals"])),
            by=draw(st.sampled_from(["campaign", "channel"])),
            lookback_days=draw(st.sampled_from([365, 30, 0])),
            opportunity_types=draw(
                st.sampled_from([("new", "expansion"), ("new", "expansion", "renewal")])
            ),
        )
        start = date(2025, 1, 1) + timedelta(days=draw(st.integers(0, 150)))
        as_of = start + timedelta(days=draw(st.integers(0, 250)))
        known = draw(st.sampled_from([None, None, 100, 200, 250, 300]))
        out.append(
            ReportOptions(
                calendar=Calendar(draw(st.sampled_from(["month", "week"]))),
                start=start,
                as_of=as_of,
                known_at=None if known is None else START + timedelta(days=known),
                credit=credit,
            )
        )
    return out


PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


@PROPERTY
@given(records=ledgers(), data=st.data())
def test_reports_equal_reading_everything(records, data, tmp_path_factory, monkeypatch):
    """Windowed, batched reads and sliced journeys give exactly what reading everything gives."""
    url = f"sqlite:///{tmp_path_factory.mktemp('reading') / 'ledger.db'}"
    build(url, records)
    monkeypatch.setattr(data_module, "ACCOUNTS_PER_BATCH", data.draw(st.sampled_from([1, 2, 1000])))
    for options in option_sets(data.draw):
        assert same(reports(url, options), oracle_reports(url, options, monkeypatch))


# --- hand-built stories on both backends ------------------------------------------------------


def fact(kind: str, sid: str, at: str, recorded: str | None = None, **fields: Any) -> Any:
    return parse_fact(
        {
            "type": kind,
            "source": "t",
            "source_id": sid,
            "actor": "a",
            "occurred_at": at,
            "recorded_at": recorded or at,
            **fields,
        }
    )


def touch(sid: str, lead: str, at: str, campaign: str, **kw: Any) -> Any:
    return fact(
        "touch_recorded",
        sid,
        at,
        lead_id=lead,
        channel="web",
        touch_type="visit",
        campaign_id=campaign,
        **kw,
    )


def opened(opp: str, account: str, at: str, **kw: Any) -> Any:
    return fact(
        "opportunity_opened",
        opp.lower(),
        at,
        opportunity_id=opp,
        account_id=account,
        amount="900.00",
        currency="USD",
        opportunity_type="new",
        stage="s",
        **kw,
    )


MOVED = "2025-06-01T00:00:00Z"
STORY = [
    # O1 opened in 2024, before the window, and won in it: its revenue credit reaches back.
    fact("lead_captured", "l1", "2024-10-01T10:00:00Z", lead_id="L1", account_id="A1"),
    touch("t1", "L1", "2024-10-01T10:00:00Z", "C-old"),
    opened("O1", "A1", "2024-11-01T10:00:00Z"),
    touch("t2", "L1", "2025-02-01T10:00:00Z", "C-new"),
    fact(
        "opportunity_won",
        "o1w",
        "2025-03-01T10:00:00Z",
        opportunity_id="O1",
        amount="600.00",
        currency="USD",
    ),
    # O2 (A2) names L3, a lead of account A3 that has no deal at all.
    fact("lead_captured", "l3", "2025-01-05T10:00:00Z", lead_id="L3", account_id="A3"),
    touch("t3", "L3", "2025-01-06T10:00:00Z", "C-named"),
    opened("O2", "A2", "2025-02-10T10:00:00Z", lead_ids=["L3"]),
    # L4 moves from A4 to A5 on 1 June (ledger time): O4 on A5 gains its touch then.
    fact("lead_captured", "l4", "2025-01-07T10:00:00Z", lead_id="L4", account_id="A4"),
    touch("t4", "L4", "2025-01-08T10:00:00Z", "C-moved"),
    fact(
        "lead_updated",
        "l4u",
        "2025-01-09T10:00:00Z",
        MOVED,
        lead_id="L4",
        attributes={"account_id": "A5"},
    ),
    opened("O4", "A5", "2025-02-15T10:00:00Z"),
    # O6 is won at the very start of the window, with a touch at that instant (it counts).
    fact("lead_captured", "l6", "2024-11-01T00:00:00Z", lead_id="L6", account_id="A6"),
    touch("t6", "L6", "2025-01-01T00:00:00Z", "C-edge"),
    touch("t7", "L6", "2025-01-01T00:00:01Z", "C-late"),
    opened("O6", "A6", "2024-12-01T00:00:00Z"),
    fact(
        "opportunity_won",
        "o6w",
        "2025-01-01T00:00:00Z",
        opportunity_id="O6",
        amount="100.00",
        currency="USD",
    ),
    # O5, on A4 (L4's old account), opened outside the window: never reported.
    opened("O5", "A4", "2025-08-15T10:00:00Z"),
]


@pytest.fixture
def url(db_url):
    ledger = open_ledger(db_url)
    ledger.record(STORY)
    projection = Projection(ledger)
    projection.catch_up()
    projection.close()
    ledger.close()
    return db_url


def window_options(**kw: Any) -> ReportOptions:
    credit = CreditOptions(**{k: v for k, v in kw.items() if k in {"metric", "lookback_days"}})
    known = kw.get("known_at")
    return ReportOptions(
        calendar=Calendar("month"),
        start=date(2025, 1, 1),
        as_of=date(2025, 4, 30),
        known_at=known,
        credit=credit,
    )


def credit_by_campaign(url: str, options: ReportOptions) -> dict[str, Decimal]:
    api = Reports(parse_url(url))
    try:
        rows = api.run("attribution", options).records()
    finally:
        api.close()
    metric = options.credit.metric
    return {r["campaign"]: r[metric] for r in rows}


def test_a_deal_opened_before_the_window_and_won_in_it_credits_its_older_touches(url):
    """O1 opened in 2024: its revenue (won in March 2025) goes to t1 (2024) and t2 alike.

    O6, won at the first instant of the window, counts, and so does its touch at that instant.
    """
    got = credit_by_campaign(url, window_options(metric="revenue"))
    assert got == {
        "C-old": Decimal("300.00"),
        "C-new": Decimal("300.00"),
        "C-edge": Decimal("100.00"),
    }


def test_a_named_lead_of_an_account_without_deals_is_credited(url):
    """O2 names L3 (account A3, no deal): L3's touch gets O2's pipeline."""
    assert credit_by_campaign(url, window_options())["C-named"] == Decimal("900.00")


def test_a_lead_that_moved_accounts_counts_for_the_new_one_from_the_move_on(url):
    """Now L4 is A5's, so O4 credits its touch; as known before the move, O4 had no touch."""
    assert credit_by_campaign(url, window_options())["C-moved"] == Decimal("900.00")
    before = window_options(known_at=datetime(2025, 5, 31, tzinfo=UTC))
    got = credit_by_campaign(url, before)
    assert "C-moved" not in got
    assert got["(no touch)"] == Decimal("900.00")


def test_deals_outside_the_window_are_not_read(url, monkeypatch):
    """Only deals whose milestone can fall in the window are read: O5 (August) is not."""
    seen: list[str] = []
    real = data_module.select_deals

    def spy(reading: Reading) -> dict[str, Deal]:
        found = real(reading)
        seen.extend(found)
        return found

    monkeypatch.setattr(data_module, "select_deals", spy)
    monkeypatch.setattr(credited_module, "usable", lambda *_: False)  # read the tables
    credit_by_campaign(url, window_options())
    assert sorted(seen) == ["O2", "O4"]
    seen.clear()
    credit_by_campaign(url, window_options(metric="revenue"))
    assert sorted(seen) == ["O1", "O6"]


def test_the_windowed_reports_equal_reading_everything(url, monkeypatch):
    """Each report, for each metric and as known before the move, equals the oracle."""
    for options in (
        window_options(),
        window_options(metric="revenue"),
        window_options(known_at=datetime(2025, 5, 31, tzinfo=UTC)),
        window_options(lookback_days=10),
    ):
        assert same(reports(url, options), oracle_reports(url, options, monkeypatch))


def test_audit_reads_the_deal_whatever_the_window(url):
    """Audit deal reads one deal by id: O1, opened in 2024, with both touches and why."""
    reader = Reader(parse_url(url))
    try:
        sections = audit_deal(reader, Window.resolve(window_options(metric="revenue")), "O1")
    finally:
        reader.close()
    statuses = {r["source_id"]: r["status"] for r in sections[1].records() if r["source_id"]}
    assert statuses == {"t/t1": "credited", "t/t2": "credited"}


def test_a_projection_without_the_account_on_touches_asks_for_a_rebuild(sqlite_url):
    """Reports refuse tables built before touches carried their lead's account."""
    build(sqlite_url, [])
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        for (name,) in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'rl_touch'"
            " AND name LIKE '%journeys%'"
        ):
            conn.exec_driver_sql(f"DROP INDEX {name}")
        conn.exec_driver_sql("ALTER TABLE rl_touch DROP COLUMN account_id")
    engine.dispose()
    api = Reports(parse_url(sqlite_url))
    try:
        with pytest.raises(ReportError, match="rebuild"):
            api.run("attribution", window_options())
    finally:
        api.close()


# --- the models' integer fast path -------------------------------------------------------------


def reference_shares(model: Model, journey: Journey) -> list[Share]:  # noqa: C901 - as defined
    """The definition of docs/credit.md, "Positions" and "Models", in fractions."""
    touches = journey.touches

    def last_group(indexes: Any, until: int) -> list[int]:
        before = [i for i in indexes if touches[i].at_us <= until]
        if not before:
            return []
        at = max(touches[i].at_us for i in before)
        return [i for i in before if touches[i].at_us == at]

    if model.half_life_days is not None:
        half_life = float(model.half_life_days) * DAY_US
        weights = [
            Fraction(2.0 ** (-(journey.milestone_us - t.at_us) / half_life)) for t in touches
        ]
        roles: list[list[str]] = [[] for _ in touches]
    else:
        everyone = range(len(touches))
        found = {}
        if touches:
            found = {
                "first": [i for i in everyone if touches[i].at_us == touches[0].at_us],
                "last": last_group(everyone, journey.milestone_us),
                "opportunity_creation": last_group(everyone, journey.opened_us),
            }
            if journey.won_us is not None:
                found["closed_won"] = last_group(everyone, journey.won_us)
            if journey.created is not None:
                lead, captured = journey.created
                found["lead_creation"] = last_group(
                    [i for i in everyone if touches[i].lead_id == lead], captured
                )
        weights = [Fraction(0)] * len(touches)
        roles = [[] for _ in touches]
        for position, group in found.items():
            if group and model.weights.get(position):
                for i in group:
                    weights[i] += model.weights[position] / len(group)
                    roles[i].append(position)
        rest = [i for i in everyone if not roles[i]]
        for i in rest if model.rest else ():
            weights[i] += model.rest / len(rest)
            roles[i].append("rest")
    if not any(weights):
        return [Share(None, Fraction(1))]
    return [Share(t, w, tuple(r)) for t, w, r in zip(touches, weights, roles, strict=True)]


@st.composite
def journeys(draw: Any) -> Journey:
    """Up to 12 touches of two leads over 40 days (ties likely), and milestones around them."""
    raw = draw(
        st.lists(
            st.tuples(st.integers(0, 40), st.sampled_from(["L1", "L2"]), st.integers(0, 3)),
            max_size=12,
        )
    )
    touches = tuple(
        sorted(
            (
                Touch(lead, day * DAY_US, "web", f"C{c}", "visit", "s", f"{n}")
                for n, (day, lead, c) in enumerate(raw)
            ),
            key=Touch.order,
        )
    )
    milestone, opened = draw(st.integers(0, 45)), draw(st.integers(0, 45))
    created = draw(
        st.one_of(st.none(), st.tuples(st.sampled_from(["L1", "L2"]), st.integers(0, 45)))
    )
    return Journey(
        touches,
        milestone * DAY_US,
        opened * DAY_US,
        milestone * DAY_US if draw(st.booleans()) else None,
        None if created is None else (created[0], created[1] * DAY_US),
    )


models = st.one_of(
    st.sampled_from([m for m in MODEL_NAMES if m != "time-decay"]).map(named_model),
    st.integers(1, 60).map(lambda h: named_model("time-decay", h)),
    st.fixed_dictionaries(
        {},
        optional={
            p: st.integers(0, 50)
            for p in (
                "first",
                "lead_creation",
                "opportunity_creation",
                "closed_won",
                "last",
                "rest",
            )
        },
    )
    .filter(lambda d: any(d.values()))
    .map(lambda d: model_from_mapping(d, "prop")),
    st.fixed_dictionaries({"first": st.fractions(0, 3), "rest": st.fractions(0, 3)})
    .filter(lambda d: any(d.values()))
    .map(lambda d: model_from_mapping({k: str(float(v)) for k, v in d.items()}, "prop")),
)
amounts = st.sampled_from(["0", "0.01", "100.00", "10.5", "0.005", "123456789.99", "1"])


@given(journeys(), models, amounts, st.sampled_from([None, Decimal("0.0001")]))
def test_the_fast_path_gives_the_definitions_shares_and_parts(journey, model, amount, unit):
    """Integer weights give the defined fractions and roles, and the same parts to the unit."""
    expected = reference_shares(model, journey)
    assert Crediting(model).shares(journey) == expected
    value = Decimal(amount)
    parts = [(s.touch, p) for s, p in credit(model, journey, value, unit)]
    assert repr(Crediting(model).split(journey, value, unit)) == repr(parts)
    assert [p for _, p in parts] == allocate(value, [s.weight for s in expected], unit)


def test_ties_in_the_account_slice_keep_the_touch_order():
    """Touches at one instant are ordered by source and source id across leads (the journal)."""
    rng = random.Random(7)  # noqa: S311 - test data
    touches = {
        lead: sorted(
            (
                Touch(
                    lead,
                    rng.choice([1, 2]) * DAY_US,
                    "web",
                    None,
                    "v",
                    rng.choice("ab"),
                    f"{lead}{n}",
                )
                for n in range(5)
            ),
            key=Touch.order,
        )
        for lead in ("L1", "L2", "L3")
    }
    contacts = {lead: Contact(lead, "A", 0, None) for lead in touches}
    deal = Deal("O", "A", "new", 3 * DAY_US, Decimal(1), "USD", ("L2",), ())
    data = CreditData({"O": deal}, contacts, touches, {})
    sliced = data.journey(deal, "pipeline", 365)
    assert data.journal(deal) is not None
    assert sliced is not None
    assert list(sliced.touches) == sorted(
        (t for ts in touches.values() for t in ts), key=Touch.order
    )
