"""The ledger application on each backend: idempotent, atomic, order-agnostic recording."""

from __future__ import annotations

import pytest

from ledger.application import open_ledger
from ledger.codec import fact_to_record
from ledger.errors import CorrectionTargetMissing, InvalidFact, StoreUnavailable
from tests.factories import fact, stage


def test_recorded_facts_read_back_equal(db_url: str) -> None:
    """Facts read from the store equal the facts recorded, field types included."""
    ledger = open_ledger(db_url)
    facts = [
        fact("lead_captured", "c1", lead_id="L1", email="a@example.com",
             attributes={"title": "CTO"}),
        fact("opportunity_opened", "o1", opportunity_id="O1", account_id="A1", amount="1250.50",
             currency="EUR", opportunity_type="new", stage="discovery", lead_ids=["L1"],
             expected_close="2025-06-30"),
    ]
    ledger.record(facts)
    assert [f for _, f in ledger.facts()] == facts


def test_same_fact_twice_in_one_batch_is_one_duplicate(db_url: str) -> None:
    """A fact repeated inside a batch is recorded once and reported once as a duplicate."""
    ledger = open_ledger(db_url)
    one = stage("L1", "mql", "s1", "2025-01-01T00:00:00Z")
    result = ledger.record([one, one])
    assert (len(result.recorded), len(result.duplicates)) == (1, 1)
    assert ledger.position() == 1


def test_redelivered_fact_is_a_duplicate_not_an_error(db_url: str) -> None:
    """A fact already in the ledger is reported as a duplicate and not stored again."""
    ledger = open_ledger(db_url)
    ledger.record([stage("L1", "mql", "s1", "2025-01-01T00:00:00Z")])
    again = ledger.record([stage("L1", "mql", "s1", "2025-01-01T00:00:00Z"),
                           stage("L1", "sal", "s2", "2025-01-02T00:00:00Z")])
    assert [f.source_id for f in again.duplicates] == ["s1"]
    assert [f.source_id for f in again.recorded] == ["s2"]
    assert ledger.position() == 2


def test_same_source_id_from_another_source_is_a_different_fact(db_url: str) -> None:
    """Idempotency is keyed by (source, source_id), not source_id alone."""
    ledger = open_ledger(db_url)
    result = ledger.record([fact("lead_captured", "1", source="hubspot", lead_id="L1"),
                            fact("lead_captured", "1", source="salesforce", lead_id="L2")])
    assert len(result.recorded) == 2


def test_late_and_messy_history_is_recorded_as_it_is(db_url: str) -> None:
    """Late events, skips, backward moves and a close before first contact are all accepted."""
    ledger = open_ledger(db_url)
    ledger.record([stage("L1", "sqo", "s3", "2025-03-01T00:00:00Z", frm="mql")])  # skip
    ledger.record([stage("L1", "mql", "s1", "2025-01-01T00:00:00Z"),  # late
                   stage("L1", "sal", "s4", "2025-04-01T00:00:00Z", frm="sqo"),  # backward
                   fact("opportunity_won", "w1", "2024-12-01T00:00:00Z", opportunity_id="O1",
                        amount="10", currency="USD")])  # before first contact
    assert ledger.position() == 4


def test_retraction_must_name_a_recorded_fact(db_url: str) -> None:
    """A retraction of a fact the ledger does not hold is refused, and nothing is written."""
    ledger = open_ledger(db_url)
    retract = fact("fact_retracted", "r1", target_source="test", target_source_id="nope",
                   reason="typo")
    with pytest.raises(CorrectionTargetMissing) as caught:
        ledger.record([stage("L1", "mql", "s1", "2025-01-01T00:00:00Z"), retract])
    assert caught.value.field == "target_source_id"
    assert ledger.position() == 0


def test_correction_may_target_a_fact_earlier_in_the_same_batch(db_url: str) -> None:
    """A batch may carry a fact and its retraction together."""
    ledger = open_ledger(db_url)
    result = ledger.record([
        stage("L1", "mql", "s1", "2025-01-01T00:00:00Z"),
        fact("fact_retracted", "r1", target_source="test", target_source_id="s1", reason="typo"),
    ])
    assert len(result.recorded) == 2


def test_amendment_that_would_break_its_target_is_refused(db_url: str) -> None:
    """An amendment is checked against its target's schema, naming the amended field."""
    ledger = open_ledger(db_url)
    ledger.record([fact("opportunity_amount_changed", "a1", opportunity_id="O1", amount="10",
                        currency="USD")])
    bad = fact("fact_amended", "m1", target_source="test", target_source_id="a1",
               changes={"amount": "ten"}, reason="typo")
    with pytest.raises(InvalidFact) as caught:
        ledger.record([bad])
    assert caught.value.field == "changes.amount"
    assert ledger.position() == 1


def test_amendment_cannot_change_the_identity_of_a_fact(db_url: str) -> None:
    """``source`` and ``source_id`` are the identity of a fact: amending them is refused."""
    ledger = open_ledger(db_url)
    ledger.record([stage("L1", "mql", "s1", "2025-01-01T00:00:00Z")])
    bad = fact("fact_amended", "m1", target_source="test", target_source_id="s1",
               changes={"source_id": "s9"}, reason="typo")
    with pytest.raises(InvalidFact, match="cannot amend source_id"):
        ledger.record([bad])


def test_reading_pages_through_the_whole_log(db_url: str) -> None:
    """facts() returns every fact in recording order across page boundaries."""
    ledger = open_ledger(db_url)
    ledger.record([stage(f"L{i}", "mql", f"s{i}", "2025-01-01T00:00:00Z") for i in range(25)])
    ids = [f.source_id for _, f in ledger.facts(page=7)]
    assert ids == [f"s{i}" for i in range(25)]
    assert [f.source_id for _, f in ledger.facts(after=20)] == ["s20", "s21", "s22", "s23", "s24"]


def test_restored_fact_keeps_its_recording_time(db_url: str) -> None:
    """A record carrying recorded_at (as export writes it) keeps that ledger time."""
    ledger = open_ledger(db_url)
    original = stage("L1", "mql", "s1", "2025-01-01T00:00:00Z")
    from ledger.codec import parse_fact  # noqa: PLC0415

    restored = parse_fact(fact_to_record(original))
    ledger.record([restored])
    (_, back), = ledger.facts()
    assert back.recorded_at == original.recorded_at


def test_opening_without_create_refuses_a_store_with_no_ledger(db_url: str) -> None:
    """Read-only commands on an empty database say to run init instead of failing obscurely."""
    with pytest.raises(StoreUnavailable, match="init"):
        open_ledger(db_url, create=False)


def test_a_batch_after_new_facts_is_written_without_asking_and_still_exact(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a batch of new facts, the next is written without asking the store first.

    One that holds a recorded fact is refused by the store, partitioned, and written again,
    leaving no gap in positions.
    """
    ledger = open_ledger(db_url)
    asked: list[int] = []
    existing = type(ledger).existing

    def counted(self: object, ids: list[object]) -> object:
        asked.append(len(ids))
        return existing(self, ids)  # type: ignore[arg-type]

    monkeypatch.setattr(type(ledger), "existing", counted)
    facts = [stage(f"L{i}", "mql", f"s{i}", "2025-01-01T00:00:00Z") for i in range(12)]
    ledger.record(facts[0:3])  # the first batch asks
    second = ledger.record(facts[3:6], checkpoint=("file", 6))  # after new facts: no question
    assert asked == [3]
    assert len(second.recorded) == 3
    mixed = ledger.record([facts[1], facts[6], facts[6], facts[4], facts[7]],
                          checkpoint=("file", 11))
    assert [f.source_id for f in mixed.recorded] == ["s6", "s7"]
    assert sorted(f.source_id for f in mixed.duplicates) == ["s1", "s4", "s6"]
    assert mixed.held == 2
    assert asked == [3, 4]  # refused, then asked about its 4 distinct facts
    assert ledger.checkpoint("file") == 11
    ledger.record(facts[8:10])  # after a batch that held recorded facts: asked again
    ledger.record(facts[10:12])  # and not after one that held none
    assert asked == [3, 4, 2]
    assert ledger.position() == 12  # the refused batch's ids were given back
    assert sorted(f.source_id for _, f in ledger.facts()) == sorted(f.source_id for f in facts)
    ledger.close()
