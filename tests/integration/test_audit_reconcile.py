"""Reconcile: every lead in either count lands in exactly one class, so the totals add up."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.synthetic import generate
from ledger.application import open_ledger
from ledger.codec import parse_fact
from projections.audit_api import FunnelAudit
from projections.audit_reconcile import reconcile
from tests.factories import fact

KINDS = {
    "handed_off": {"to_owner": "sdr"},
    "lead_accepted": {"owner": "sdr"},
    "lead_rejected": {"reason": "duplicate"},
    "lead_disqualified": {"reason": "spam"},
    "lead_recycled": {"reason": "timing"},
    "sales_activity_recorded": {"activity_type": "call"},
}
BASE = datetime(2025, 1, 1, tzinfo=UTC)
SPAN = (BASE + timedelta(days=10), BASE + timedelta(days=20))


def _leads(draw_events: list[list[tuple[str, int]]]):
    for number, events in enumerate(draw_events):
        lead = f"L{number}"
        facts = [
            fact(kind, f"{lead}:{i}", (BASE + timedelta(hours=h)).isoformat(), lead_id=lead,
                 **KINDS[kind])
            for i, (kind, h) in enumerate(events)
        ]
        yield lead, sorted(facts, key=lambda f: f.occurred_at)


def _sums(report) -> dict[str, int]:
    sums: dict[str, int] = {}
    for line, _class, count in report.rows:
        sums[line] = sums.get(line, 0) + count
    return sums


EVENTS = st.lists(
    st.lists(st.tuples(st.sampled_from(sorted(KINDS)), st.integers(0, 30 * 24)), max_size=6),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(EVENTS)
def test_marketing_count_is_matched_plus_marketing_only(events):
    """Marketing = matched + every marketing-only class, for any set of leads."""
    sums = _sums(reconcile(_leads(events), SPAN, lambda _t: timedelta(hours=24)))
    assert sums["marketing count"] == sums.get("matched", 0) + sums.get("marketing only", 0)


@settings(max_examples=150, deadline=None)
@given(EVENTS)
def test_sales_count_is_matched_plus_sales_only(events):
    """Sales = matched + every sales-only class, for any set of leads."""
    sums = _sums(reconcile(_leads(events), SPAN, lambda _t: timedelta(hours=24)))
    assert sums["sales count"] == sums.get("matched", 0) + sums.get("sales only", 0)


def test_lead_listing_has_one_row_per_lead_of_either_count(db_url: str):
    """With --leads every lead of either count is listed exactly once."""
    ledger = open_ledger(db_url)
    ledger.record([parse_fact(r) for r in generate(120, seed=5)])
    audit = FunnelAudit(ledger)
    summary = _sums(audit.reconcile(date(2025, 3, 1), date(2025, 5, 31)))
    listed = audit.reconcile(date(2025, 3, 1), date(2025, 5, 31), per_lead=True).rows
    audit.close()
    ledger.close()
    ids = [row[0] for row in listed]
    expected = summary["matched"] + summary.get("marketing only", 0) + summary.get("sales only", 0)
    assert len(ids) == len(set(ids)) == expected
