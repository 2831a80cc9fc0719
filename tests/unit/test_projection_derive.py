"""Unit tests of the per-lead derivation, corrections and bitemporal rows (no I/O)."""

from __future__ import annotations

from typing import Any

from ledger.codec import parse_fact
from ledger.events import Fact
from projections.corrections import Family, order_key
from projections.history import known_rows
from projections.leads import derive_lead
from projections.opportunities import derive_opportunity
from projections.periods import FOREVER, to_us
from projections.stages import classify

T0 = "2025-01-01T00:00:00Z"


def fact(n: int, kind: str, day: int, recorded_day: int | None = None, **fields: Any) -> Fact:
    record = {
        "type": kind,
        "occurred_at": f"2025-01-{day:02d}T00:00:00Z",
        "recorded_at": f"2025-02-{recorded_day or 1:02d}T00:00:00Z",
        "source": "test",
        "source_id": str(n),
        "actor": "tester",
        **fields,
    }
    return parse_fact(record)


def stage(n: int, day: int, to: str, **fields: Any) -> Fact:
    return fact(n, "stage_changed", day, lead_id="L", to_stage=to, **fields)


def stays(facts: list[Fact]) -> list[tuple[Any, ...]]:
    return sorted(derive_lead(sorted(facts, key=order_key))["stay"])


def kinds(facts: list[Fact]) -> list[str]:
    return [row[2] for row in sorted(derive_lead(sorted(facts, key=order_key))["anomaly"])]


def day(n: int) -> int:
    return to_us(
        parse_fact(
            {
                "type": "lead_updated",
                "occurred_at": f"2025-01-{n:02d}T00:00:00Z",
                "source": "x",
                "source_id": "x",
                "actor": "x",
                "lead_id": "x",
                "attributes": {},
            }
        ).occurred_at
    )


def test_stays_are_half_open_intervals_chained_in_business_order():
    """Each stay ends exactly when the next begins; the last one stays open."""
    rows = stays([stage(2, 5, "sal"), stage(1, 2, "mql")])
    assert [(r[1], r[2], r[3]) for r in rows] == [("mql", day(2), day(5)), ("sal", day(5), FOREVER)]


def test_a_forward_jump_over_a_stage_is_a_skip_listing_the_skipped_stages():
    """``mql`` -> ``sql`` skips ``sal``."""
    rows = stays([stage(1, 1, "mql"), stage(2, 2, "sql")])
    assert rows[1][6:8] == ("skip", ",sal,")


def test_moving_to_lost_from_any_stage_is_not_a_skip():
    """``lost`` closes a lead from anywhere."""
    assert classify("mql", "lost") == ("forward", ())


def test_backward_move_and_reentry_are_flagged():
    """``sal`` -> ``mql`` is backward, and ``mql`` is entered a second time."""
    rows = stays([stage(1, 1, "mql"), stage(2, 2, "sal"), stage(3, 3, "mql")])
    assert rows[2][6] == "backward"
    assert rows[2][8] is True
    assert rows[1][8] is False


def test_same_instant_ties_are_broken_by_recorded_at_then_source_id():
    """Two moves at one instant follow (recorded_at, source, source_id), never arrival order."""
    late = fact(1, "stage_changed", 2, recorded_day=9, lead_id="L", to_stage="sal")
    early = fact(2, "stage_changed", 2, recorded_day=3, lead_id="L", to_stage="mql")
    rows = stays([late, early])
    assert [r[1] for r in rows] == ["mql", "sal"]
    assert rows[0][2] == rows[0][3]  # a zero-length stay


def test_anomalies_cover_skip_backward_mismatch_terminal_and_close_before_contact():
    """Every anomaly kind the derivation knows is produced by its triggering history."""
    facts = [
        stage(1, 3, "mql"),
        stage(2, 4, "sql", from_stage="sal"),
        stage(3, 5, "won"),
        stage(4, 6, "sal"),
        stage(5, 7, "sal"),
        fact(6, "lead_captured", 10, lead_id="L"),
    ]
    assert sorted(kinds(facts)) == sorted(
        [
            "from_mismatch",
            "skip",
            "skip",
            "after_terminal",
            "backward",
            "no_change",
            "close_before_contact",
        ]
    )


def test_dimensions_take_latest_owner_and_first_touch_channel():
    """Owner is the latest assignment; channel the earliest touch's."""
    facts = [
        fact(1, "lead_captured", 1, lead_id="L", segment="smb", country="FR", lead_source="web"),
        fact(2, "touch_recorded", 3, lead_id="L", channel="email", touch_type="open"),
        fact(3, "touch_recorded", 2, lead_id="L", channel="paid", touch_type="click"),
        fact(4, "owner_assigned", 5, lead_id="L", owner="bob"),
        fact(5, "lead_accepted", 4, lead_id="L", owner="ann"),
        fact(6, "lead_updated", 6, lead_id="L", attributes={"segment": "mid"}),
    ]
    (lead,) = derive_lead(sorted(facts, key=order_key))["lead"]
    assert lead == (day(1), "web", "mid", "FR", "bob", "paid")


def test_retraction_removes_and_amendment_replaces_the_target():
    """A retracted fact counts no more; an amended one counts with its changes."""
    move = stage(1, 1, "mql")
    retract = fact(2, "fact_retracted", 9, target_source="test", target_source_id="1", reason="x")
    amend = fact(
        3,
        "fact_amended",
        9,
        target_source="test",
        target_source_id="1",
        changes={"to_stage": "sal"},
        reason="y",
    )
    assert Family(move, [retract]).effective(FOREVER) is None
    assert Family(move, [amend]).effective(FOREVER).to_stage == "sal"


def test_retracting_a_retraction_restores_the_target():
    """Corrections can target corrections."""
    move = stage(1, 1, "mql")
    retract = fact(2, "fact_retracted", 9, target_source="test", target_source_id="1", reason="x")
    undo = fact(3, "fact_retracted", 10, target_source="test", target_source_id="2", reason="oops")
    assert Family(move, [retract, undo]).effective(FOREVER) == move


def test_corrections_only_count_from_when_they_were_recorded():
    """Known at a time before the retraction was recorded, the fact still counts."""
    move = stage(1, 1, "mql")
    retract = fact(
        2,
        "fact_retracted",
        9,
        recorded_day=20,
        target_source="test",
        target_source_id="1",
        reason="x",
    )
    family = Family(move, [retract])
    assert family.effective(to_us(retract.recorded_at) - 1) == move
    assert family.effective(to_us(retract.recorded_at)) is None


def test_known_rows_close_a_row_when_a_later_fact_changes_it():
    """The open mql stay is known until the sal move is recorded, then replaced."""
    mql = fact(1, "stage_changed", 1, recorded_day=1, lead_id="L", to_stage="mql")
    sal = fact(2, "stage_changed", 5, recorded_day=6, lead_id="L", to_stage="sal")
    rows = sorted(known_rows([Family(mql), Family(sal)], "lead", "L")["stay"])
    first, second = to_us(mql.recorded_at), to_us(sal.recorded_at)
    assert [(r[1], r[3], r[-2], r[-1]) for r in rows] == [
        ("mql", day(5), second, FOREVER),
        ("mql", FOREVER, first, second),
        ("sal", FOREVER, second, FOREVER),
    ]


def test_opportunity_intervals_track_amount_and_openness():
    """Won closes the opportunity at its final amount; reopening opens it again."""
    facts = [
        fact(
            1,
            "opportunity_opened",
            1,
            opportunity_id="O",
            account_id="A",
            amount="10",
            currency="USD",
            opportunity_type="new",
            stage="Discovery",
        ),
        fact(2, "opportunity_won", 3, opportunity_id="O", amount="12.5", currency="USD"),
        fact(3, "opportunity_reopened", 4, opportunity_id="O"),
    ]
    rows = sorted(derive_opportunity(facts)["opp"])
    assert [(r[2], r[4]) for r in rows] == [(100000, True), (125000, False), (125000, True)]
