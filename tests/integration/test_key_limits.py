"""Ids and labels at the ingest limit fit every index of the projection, on both databases.

A PostgreSQL B-tree entry holds at most 2,704 bytes; the touch's covering index holds seven
ids and labels. The ledger refuses one longer than 200 bytes (ledger/codec.py), so a fact it
accepts can always be projected: here every keyed field is 200 bytes of four-byte characters.
"""

from __future__ import annotations

from datetime import date

from ledger.application import open_ledger
from projections.api import Reports
from projections.credit.options import CreditOptions
from projections.runner import Projection
from projections.window import ReportOptions
from tests.factories import fact


def _long(tag: str) -> str:
    return tag + "😀" * 49 + "xxx"[: 200 - len(tag.encode()) - 196]


def test_facts_with_the_longest_ids_and_labels_project_and_report(db_url: str) -> None:
    lead, account, source, campaign = _long("L"), _long("A"), _long("S"), _long("C")
    assert all(len(v.encode()) == 200 for v in (lead, account, source, campaign))
    facts = [
        fact("lead_captured", _long("1"), "2025-01-02T00:00:00Z", source=source, lead_id=lead,
             account_id=account, attributes={"segment": _long("G"), "country": _long("N")}),
        fact("touch_recorded", _long("2"), "2025-01-03T00:00:00Z", source=source, lead_id=lead,
             channel=_long("W"), touch_type=_long("T"), campaign_id=campaign),
        fact("stage_changed", _long("3"), "2025-01-04T00:00:00Z", source=source, lead_id=lead,
             to_stage="mql"),
        fact("opportunity_opened", _long("4"), "2025-01-05T00:00:00Z", source=source,
             opportunity_id=_long("O"), account_id=account, amount="100.00", currency="USD",
             opportunity_type="new", stage=_long("s"), lead_ids=[lead]),
    ]
    ledger = open_ledger(db_url)
    ledger.record(facts)
    projection = Projection(ledger)
    projection.catch_up()
    projection.rebuild()
    projection.close()
    ledger.close()
    api = Reports(open_ledger(db_url).config)
    options = ReportOptions(start=date(2025, 1, 1), as_of=date(2025, 1, 31),
                            credit=CreditOptions())
    credited = api.run("attribution", options).records()
    by_segment = api.run("inventory", options.replace(by="segment")).records()
    api.close()
    assert [(row["campaign"], str(row["pipeline"])) for row in credited] == [(campaign, "100.00")]
    assert {row["segment"] for row in by_segment} == {_long("G")}
