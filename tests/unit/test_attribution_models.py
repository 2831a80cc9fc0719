"""Hand-computed credit for every attribution model (docs/credit.md), on journeys built by hand."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from projections.credit.journeys import DAY_US, NO_TOUCH, Journey, Touch, credit, positions
from projections.credit.models import load_model, named_model
from projections.errors import ReportError

OPENED = 100 * DAY_US


def touch(day: float, name: str, lead: str = "L1") -> Touch:
    return Touch(lead, int(day * DAY_US), "web", name, "visit", "t", name)


def parts(model: str, touches, amount="100.00", *, won=None, created=None, **kw):
    milestone = won if won is not None else OPENED
    journey = Journey(tuple(touches), milestone, OPENED, won_us=won, created=created)
    got = credit(named_model(model, **kw), journey, Decimal(amount))
    return {(s.touch.source_id if s.touch else NO_TOUCH): p for s, p in got}


FOUR = [touch(1, "a"), touch(2, "b"), touch(3, "c"), touch(4, "d")]
CREATED_AT_A = ("L1", 1 * DAY_US)
CREATED_AT_B = ("L1", 2 * DAY_US)


def test_first_touch_gets_everything():
    """First-touch gives the whole amount to the earliest touch."""
    assert parts("first", FOUR) == {"a": Decimal("100.00"), "b": 0, "c": 0, "d": 0}


def test_first_touch_tie_is_split_equally():
    """Two touches at the same earliest instant share the first-touch credit equally."""
    tied = [touch(1, "a"), touch(1, "b"), touch(3, "c")]
    assert parts("first", tied) == {"a": Decimal("50.00"), "b": Decimal("50.00"), "c": 0}


def test_last_touch_gets_everything():
    """Last-touch gives the whole amount to the latest touch before the milestone."""
    assert parts("last", FOUR)["d"] == Decimal("100.00")


def test_linear_thirds_round_to_the_cent_and_add_up():
    """Linear splits 100.00 in three as 33.34 + 33.33 + 33.33 (the earliest takes the odd cent)."""
    got = parts("linear", FOUR[:3])
    assert got == {"a": Decimal("33.34"), "b": Decimal("33.33"), "c": Decimal("33.33")}


def test_u_shaped_gives_40_40_and_splits_20_over_the_rest():
    """U-shaped: first 40, lead creation 40, the two other touches 10 each."""
    got = parts("u", FOUR, created=CREATED_AT_B)
    assert got == {
        "a": Decimal("40.00"),
        "b": Decimal("40.00"),
        "c": Decimal("10.00"),
        "d": Decimal("10.00"),
    }


def test_u_shaped_first_touch_that_created_the_lead_holds_both_weights():
    """When the first touch also created the lead it gets 40 + 40, the rest share 20."""
    got = parts("u", FOUR[:3], created=CREATED_AT_A)
    assert got == {"a": Decimal("80.00"), "b": Decimal("10.00"), "c": Decimal("10.00")}


def test_u_shaped_without_lead_creation_scales_the_remaining_weights():
    """No lead creation in the window: first 40 and rest 20 become 2/3 and 1/3."""
    got = parts("u", FOUR[:3])
    assert got == {"a": Decimal("66.67"), "b": Decimal("16.67"), "c": Decimal("16.66")}


def test_u_shaped_two_positional_touches_and_no_rest_split_evenly():
    """First and lead-creation touches alone share 50/50: the rest's weight drops out."""
    assert parts("u", FOUR[:2], created=CREATED_AT_B) == {"a": Decimal(50), "b": Decimal(50)}


def test_single_touch_gets_the_whole_amount_under_every_model():
    """A one-touch journey credits that touch with 100 % whatever the model."""
    for model in ("first", "last", "linear", "u", "w", "full-path", "time-decay"):
        assert parts(model, [touch(5, "a")], created=("L1", 5 * DAY_US)) == {"a": Decimal(100)}


def test_w_shaped_gives_30_30_30_and_10_to_the_rest():
    """W-shaped: first, lead creation and opportunity creation 30 each; two others 5 each."""
    five = [*FOUR, touch(5, "e")]
    got = parts("w", five, created=CREATED_AT_B)
    assert got == {
        "a": Decimal(30),
        "b": Decimal(30),
        "c": Decimal(5),
        "d": Decimal(5),
        "e": Decimal(30),
    }


def test_full_path_gives_22_5_to_four_positions_and_10_to_the_rest():
    """Full path on revenue: first, lead creation, opportunity creation, closed won 22.5 each."""
    touches = [
        touch(1, "a"),
        touch(2, "b"),
        touch(50, "c"),
        touch(100, "d"),
        touch(150, "e"),
        touch(200, "f"),
    ]
    got = parts("full-path", touches, won=200 * DAY_US, created=CREATED_AT_B)
    assert got == {
        "a": Decimal("22.50"),
        "b": Decimal("22.50"),
        "c": Decimal("5.00"),
        "d": Decimal("22.50"),
        "e": Decimal("5.00"),
        "f": Decimal("22.50"),
    }


def test_full_path_on_pipeline_drops_closed_won_and_rescales():
    """Full path for pipeline has no closed-won touch: three times 22.5 and 10 are out of 77.5."""
    got = parts("full-path", FOUR, created=CREATED_AT_B)
    assert got == {
        "a": Decimal("29.03"),
        "b": Decimal("29.03"),
        "c": Decimal("12.91"),
        "d": Decimal("29.03"),
    }


def test_time_decay_matches_the_closed_form_for_one_and_two_half_lives():
    """Ages 0, 7 and 14 days with a 7-day half-life weigh 4:2:1, so 400/7, 200/7, 100/7."""
    got = parts("time-decay", [touch(86, "a"), touch(93, "b"), touch(100, "c")])
    assert got == {"a": Decimal("14.29"), "b": Decimal("28.57"), "c": Decimal("57.14")}


def test_time_decay_half_life_is_configurable():
    """With a 1-day half-life, touches 1 day apart weigh 1:2 of 3.00."""
    got = parts("time-decay", [touch(99, "a"), touch(100, "b")], "3.00", half_life_days=1)
    assert got == {"a": Decimal("1.00"), "b": Decimal("2.00")}


def test_tied_touches_get_equal_time_decay_credit():
    """Touches at the same instant weigh the same under time decay."""
    assert parts("time-decay", [touch(99, "a"), touch(99, "b")]) == {"a": 50, "b": 50}


def test_no_touch_credits_the_no_touch_bucket_with_the_whole_amount():
    """A deal without touches in its window still adds up: all of it goes to (no touch)."""
    assert parts("w", []) == {NO_TOUCH: Decimal("100.00")}


def test_model_without_weight_for_any_present_position_credits_no_touch():
    """A custom model weighing only closed-won credits (no touch) for pipeline."""
    model = load_model_from({"closed_won": 1})
    journey = Journey((touch(1, "a"),), OPENED, OPENED)
    assert [(s.touch, p) for s, p in credit(model, journey, Decimal(5))] == [(None, Decimal(5))]


def test_positions_tie_on_opportunity_creation_groups_both_touches():
    """The opportunity-creation position holds every touch at the last instant before opening."""
    tied = [touch(1, "a"), touch(4, "b"), touch(4, "c")]
    assert positions(Journey(tuple(tied), OPENED, OPENED))["opportunity_creation"] == [1, 2]


def test_lead_creation_is_the_creating_leads_own_touch():
    """Lead creation picks the created lead's latest touch at or before its capture."""
    touches = [touch(1, "a", "L1"), touch(2, "b", "L2"), touch(3, "c", "L1")]
    journey = Journey(tuple(touches), OPENED, OPENED, created=("L2", 2 * DAY_US))
    assert positions(journey)["lead_creation"] == [1]


def load_model_from(doc):
    from projections.credit.models import model_from_mapping  # noqa: PLC0415

    return model_from_mapping(doc, "test")


def test_weights_file_in_toml_defines_a_custom_model(tmp_path):
    """A TOML weights file gives a positional model, weights relative to their sum."""
    path = tmp_path / "w.toml"
    path.write_text('name = "heavy-first"\nfirst = 60\nlead_creation = 20\nrest = "20"\n')
    model = load_model(path)
    assert model.name == "heavy-first"
    assert model.weights == {"first": Fraction(60), "lead_creation": Fraction(20)}
    assert model.rest == Fraction(20)


def test_weights_file_in_json_can_define_a_time_decay(tmp_path):
    """A JSON weights file with half_life_days gives a time-decay model."""
    path = tmp_path / "w.json"
    path.write_text('{"name": "fast", "half_life_days": 2.5}')
    assert load_model(path).half_life_days == Fraction(5, 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("first = -1\n", "must not be negative"),
        ("firts = 1\n", "unknown key 'firts'"),
        ("rest = 0\n", "at least one position"),
        ("half_life_days = 0\n", "more than 0 days"),
        ("first = [1]\n", "expected a number"),
        ("first = \n", "not valid toml"),
    ],
)
def test_bad_weights_files_are_refused_with_the_reason(tmp_path, text, message):
    """A weights file with a bad value names the problem."""
    path = tmp_path / "w.toml"
    path.write_text(text)
    with pytest.raises(ReportError, match=message):
        load_model(path)


def test_unknown_model_name_is_refused():
    """Asking for a model that does not exist lists the models there are."""
    with pytest.raises(ReportError, match="use one of first, last, linear"):
        named_model("v-shaped")
