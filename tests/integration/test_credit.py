"""Credit reports on both backends, over a small hand-computed story (docs/credit.md).

Account A1: lead L1 (captured by a webinar touch) and L2; opportunity O1 opens on 1 February
for 1,000.00 USD and is won on 10 March for 1,200.00 USD. Account A2: lead L3 came in through an
outbound call; O2 opens on 10 February for 500.00 EUR and is lost. L2's only touch is retracted
on 1 April (ledger time), which moves credit from C2 to C1.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from ledger import open_ledger, parse_fact
from ledger.storage import parse_url
from projections.api import Reports
from projections.credit.audit import audit_deal
from projections.credit.models import named_model
from projections.credit.options import CreditOptions
from projections.errors import ReportError
from projections.periods import Calendar
from projections.reading import Reader
from projections.runner import Projection
from projections.window import ReportOptions, Window
from tests.factories import restore_fact_bytes_layout

RETRACTED_AT = "2025-04-01T09:00:00Z"


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


def touch(sid: str, lead: str, at: str, campaign: str, channel: str) -> Any:
    return fact(
        "touch_recorded",
        sid,
        at,
        lead_id=lead,
        channel=channel,
        touch_type="visit",
        campaign_id=campaign,
    )


STORY = [
    fact(
        "campaign_created",
        "c1",
        "2025-01-01T00:00:00Z",
        campaign_id="C1",
        name="Webinar",
        channel="webinar",
    ),
    fact(
        "campaign_created",
        "c2",
        "2025-01-01T00:00:00Z",
        campaign_id="C2",
        name="Ads",
        channel="paid_search",
    ),
    fact(
        "campaign_created",
        "c3",
        "2025-01-01T00:00:00Z",
        campaign_id="C3",
        name="SDR",
        channel="outbound",
    ),
    fact(
        "campaign_spend_recorded",
        "s1",
        "2025-02-15T00:00:00Z",
        campaign_id="C1",
        amount="300.00",
        currency="USD",
        period_start="2025-01-16",
        period_end="2025-02-14",
    ),
    fact(
        "lead_captured",
        "l1",
        "2025-01-10T10:00:00Z",
        lead_id="L1",
        account_id="A1",
        lead_source="webinar",
    ),
    touch("t1", "L1", "2025-01-10T10:00:00Z", "C1", "webinar"),
    touch("t2", "L1", "2025-01-20T10:00:00Z", "C2", "paid_search"),
    fact("lead_captured", "l2", "2025-01-15T10:00:00Z", lead_id="L2", account_id="A1"),
    touch("t3", "L2", "2025-01-25T10:00:00Z", "C2", "paid_search"),
    fact(
        "opportunity_opened",
        "o1",
        "2025-02-01T10:00:00Z",
        opportunity_id="O1",
        account_id="A1",
        amount="1000.00",
        currency="USD",
        opportunity_type="new",
        stage="discovery",
        lead_ids=["L1"],
    ),
    touch("t4", "L1", "2025-03-01T10:00:00Z", "C1", "webinar"),
    fact(
        "opportunity_won",
        "o1w",
        "2025-03-10T10:00:00Z",
        opportunity_id="O1",
        amount="1200.00",
        currency="USD",
    ),
    touch("t5", "L1", "2025-03-20T10:00:00Z", "C2", "paid_search"),
    fact(
        "contract_started",
        "k1",
        "2025-03-12T10:00:00Z",
        account_id="A1",
        contract_id="K1",
        arr="1200.00",
        currency="USD",
        opportunity_id="O1",
    ),
    fact(
        "contract_contracted",
        "k2",
        "2025-03-20T10:00:00Z",
        account_id="A1",
        contract_id="K1",
        amount="100.00",
        currency="USD",
    ),
    fact("lead_captured", "l3", "2025-01-05T10:00:00Z", lead_id="L3", account_id="A2"),
    touch("t6", "L3", "2025-01-05T10:00:00Z", "C3", "outbound"),
    fact(
        "opportunity_opened",
        "o2",
        "2025-02-10T10:00:00Z",
        opportunity_id="O2",
        account_id="A2",
        amount="500.00",
        currency="EUR",
        opportunity_type="new",
        stage="discovery",
    ),
    fact("opportunity_lost", "o2l", "2025-03-15T10:00:00Z", opportunity_id="O2", reason="price"),
    fact(
        "fact_retracted",
        "x1",
        "2025-04-01T09:00:00Z",
        RETRACTED_AT,
        target_source="t",
        target_source_id="t3",
        reason="bot traffic",
    ),
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


def options(**credit: Any) -> ReportOptions:
    return ReportOptions(
        calendar=Calendar("month"),
        start=date(2025, 1, 1),
        as_of=date(2025, 4, 30),
        credit=CreditOptions(**credit),
    )


def run(url: str, name: str, opts: ReportOptions | None = None) -> list[dict[str, Any]]:
    api = Reports(parse_url(url))
    try:
        return api.run(name, opts or options()).records()
    finally:
        api.close()


def credit_of(rows, key="campaign", value="pipeline"):
    return {(r["period"], r[key], r.get("currency")): r[value] for r in rows}


def test_pipeline_credit_is_per_campaign_and_currency_and_adds_up(url):
    """Linear pipeline: O1's 1,000 USD split over its two remaining touches; O2 in EUR apart."""
    assert credit_of(run(url, "attribution")) == {
        ("2025-02", "C1", "USD"): Decimal("500.00"),
        ("2025-02", "C2", "USD"): Decimal("500.00"),
        ("2025-02", "C3", "EUR"): Decimal("500.00"),
    }


def test_revenue_credit_counts_touches_up_to_the_win_and_not_after(url):
    """Revenue: t1, t2 and t4 (before the win) share 1,200; t5 after the win gets nothing."""
    rows = run(url, "attribution", options(metric="revenue"))
    assert credit_of(rows, value="revenue") == {
        ("2025-03", "C1", "USD"): Decimal("800.00"),
        ("2025-03", "C2", "USD"): Decimal("400.00"),
    }


def test_lookback_leaves_out_touches_before_the_window(url):
    """A 15-day lookback before 1 February keeps only t2 (20 January) for O1."""
    rows = run(url, "attribution", options(lookback_days=15))
    assert credit_of(rows)[("2025-02", "C2", "USD")] == Decimal("1000.00")


def test_deals_metric_counts_each_opportunity_once(url):
    """Under --metric deals the credit of every opportunity sums to exactly one."""
    rows = run(url, "attribution", options(metric="deals"))
    assert sum(r["deals"] for r in rows) == Decimal(2)


def test_credit_by_channel_groups_touch_channels(url):
    """--by channel credits the channel of each touch."""
    rows = run(url, "attribution", options(by="channel", model=named_model("first")))
    assert credit_of(rows, key="channel") == {
        ("2025-02", "webinar", "USD"): Decimal("1000.00"),
        ("2025-02", "outbound", "EUR"): Decimal("500.00"),
    }


def test_known_at_shows_credit_as_reported_before_the_retraction(url):
    """As known on 31 March, the later-retracted touch t3 still holds a third of O1's pipeline."""
    opts = options().replace(known_at=datetime(2025, 3, 31, tzinfo=UTC))
    assert credit_of(run(url, "attribution", opts))[("2025-02", "C2", "USD")] == Decimal("666.66")


def test_compare_shows_the_retraction_as_a_difference(url):
    """--compare puts C2's 666.66 then next to 500.00 now."""
    api = Reports(parse_url(url))
    report = api.compare(
        "attribution", options().replace(known_at=datetime(2025, 3, 31, tzinfo=UTC))
    )
    api.close()
    row = next(r for r in report.records() if r["campaign"] == "C2")
    assert (row["pipeline_then"], row["pipeline_now"]) == (Decimal("666.66"), Decimal("500.00"))


def test_spend_is_prorated_by_days_over_periods(url):
    """300.00 over 16 January - 14 February: 160.00 in January, 140.00 in February."""
    rows = {(r["period"], r["campaign"]): r for r in run(url, "spend")}
    assert rows["2025-01", "C1"]["spend"] == Decimal("160.00")
    assert rows["2025-02", "C1"]["spend"] == Decimal("140.00")


def test_spend_report_gives_pipeline_to_spend_against_the_target(url):
    """February C1: 500.00 pipeline on 140.00 spend is 3.57x, 900.00 short of the 10x line."""
    row = next(r for r in run(url, "spend") if (r["period"], r["campaign"]) == ("2025-02", "C1"))
    assert row["pipeline_to_spend"] == Decimal("3.57")
    assert row["pipeline_gap"] == Decimal("-900.00")


def test_spend_after_the_as_of_date_is_not_shown(url):
    """As of 31 January the spend record (dated 15 February) is not yet a fact."""
    rows = run(url, "spend", options().replace(as_of=date(2025, 1, 31)))
    assert all(r["spend"] == 0 for r in rows)


def test_sourced_follows_the_earliest_linked_leads_first_touch_channel(url):
    """O1 (webinar capture) is marketing-sourced; O2 (outbound call) is sales-sourced."""
    rows = {(r["period"], r["sourced"]): r for r in run(url, "sourced")}
    assert rows["2025-02", "marketing"]["pipeline"] == Decimal("1000.00")
    assert rows["2025-02", "sales"]["pipeline"] == Decimal("500.00")
    assert rows["2025-03", "marketing"]["revenue"] == Decimal("1200.00")


def test_revenue_report_gives_bookings_arr_and_net_new(url):
    """March USD: 1,200 new bookings and ARR, 100 contraction, net new ARR 1,100."""
    row = next(r for r in run(url, "revenue") if (r["period"], r["currency"]) == ("2025-03", "USD"))
    assert (row["bookings_new"], row["arr_new"], row["arr_contraction"], row["net_new_arr"]) == (
        Decimal("1200.00"),
        Decimal("1200.00"),
        Decimal("100.00"),
        Decimal("1100.00"),
    )


def test_revenue_report_gives_win_rate_deal_size_and_cycle(url):
    """March USD: one win, no loss, 1,200 average, a 37-day cycle; EUR: one loss."""
    rows = {(r["period"], r["currency"]): r for r in run(url, "revenue")}
    usd, eur = rows["2025-03", "USD"], rows["2025-03", "EUR"]
    assert (usd["won"], usd["win_rate"], usd["avg_deal_size"]) == (1, 1.0, Decimal("1200.00"))
    assert usd["cycle_days"] == pytest.approx(37.0)
    assert (eur["lost"], eur["win_rate"]) == (1, 0.0)


def test_audit_lists_every_touch_with_its_status(url):
    """The audit of O1 marks touches inside the window credited and later ones after milestone."""
    reader = Reader(parse_url(url))
    sections = audit_deal(reader, Window.resolve(options()), "O1")
    reader.close()
    statuses = {r["source_id"]: r["status"] for r in sections[1].records() if r["source_id"]}
    assert statuses == {
        "t/t1": "credited",
        "t/t2": "credited",
        "t/t4": "after milestone",
        "t/t5": "after milestone",
    }


def test_audit_shows_credit_before_and_after_each_correction(url):
    """The retraction of t3 moved C2 from 666.66 to 500.00 and C1 from 333.34 to 500.00."""
    reader = Reader(parse_url(url))
    sections = audit_deal(reader, Window.resolve(options()), "O1")
    reader.close()
    moves = {r["campaign"]: (r["before"], r["after"]) for r in sections[2].records()}
    assert moves == {
        "C1": (Decimal("333.34"), Decimal("500.00")),
        "C2": (Decimal("666.66"), Decimal("500.00")),
    }


def test_audit_refuses_a_projection_from_before_fact_positions(url):
    """A build whose rl_fact kept the facts' bytes instead of their positions: one line."""
    reader = Reader(parse_url(url))
    fact = reader.tables["fact"]
    quote = reader.engine.dialect.identifier_preparer
    with reader.engine.begin() as conn:
        restore_fact_bytes_layout(conn, quote.format_table(fact))
    with pytest.raises(ReportError, match=r"predates rl_fact\.position; run 'revledger rebuild'"):
        audit_deal(reader, Window.resolve(options()), "O1")
    reader.close()
