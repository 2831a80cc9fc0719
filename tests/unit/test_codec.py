"""The canonical codec: records become facts and back, stored events become facts and back.

Round trips are property tests over every fact type (strategies are derived from the fact classes,
so a new type or field is covered without editing this file); refusals check that
:class:`InvalidFact` names the offending field.
"""

from __future__ import annotations

import string
import types
import typing
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.codec import FactMapper, dumps, fact_to_record, parse_fact
from ledger.errors import InvalidFact
from ledger.events import (
    ENVELOPE,
    FACT_TYPES,
    OPPORTUNITY_TYPES,
    Fact,
    domain_fields,
    fact_id,
    required_fields,
)
from tests.factories import record as factory_record

# --- Strategies ----------------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20).map(str.strip).filter(bool)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
AWARE_DATETIMES = st.datetimes(
    min_value=datetime(1900, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive by design
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=OFFSETS,
)
AMOUNTS = st.decimals(min_value=0, allow_nan=False, allow_infinity=False)
CURRENCIES = st.text(string.ascii_uppercase, min_size=3, max_size=3)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
JSON_OBJECTS = st.dictionaries(TEXT, JSON_VALUES, max_size=4)

KIND_STRATEGIES: dict[Any, st.SearchStrategy[Any]] = {
    str: TEXT,
    int: INT64,
    Decimal: AMOUNTS.map(lambda d: format(d, "f")),
    date: st.dates().map(date.isoformat),
    tuple[str, ...]: st.lists(TEXT, max_size=3),
    dict[str, Any]: JSON_OBJECTS,
}


def _kind(hint: Any) -> Any:
    """Return the type inside ``X | None``, or the hint itself."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _field_strategy(name: str, hint: Any) -> st.SearchStrategy[Any]:
    if name == "currency":
        return CURRENCIES
    if name == "opportunity_type":
        return st.sampled_from(sorted(OPPORTUNITY_TYPES))
    return KIND_STRATEGIES[_kind(hint)]


@st.composite
def records(draw: st.DrawFn, type_name: str) -> dict[str, Any]:
    """Draw a valid canonical record of ``type_name``, as JSON would deliver it."""
    cls = FACT_TYPES[type_name]
    required = required_fields(cls)
    record: dict[str, Any] = {
        "type": type_name,
        "occurred_at": draw(AWARE_DATETIMES).isoformat(),
        "source": draw(TEXT),
        "source_id": draw(TEXT),
        "actor": draw(TEXT),
    }
    if draw(st.booleans()):
        record["recorded_at"] = draw(AWARE_DATETIMES).isoformat()
    for name, hint in domain_fields(cls).items():
        if name in required or draw(st.booleans()):
            record[name] = draw(_field_strategy(name, hint))
    if "cost" in record:
        record.setdefault("currency", draw(CURRENCIES))
    if type_name == "lead_updated" and not record["attributes"]:
        record["attributes"] = {"title": "CFO"}  # empty is allowed; tested separately
    if "period_start" in record:
        record["period_start"], record["period_end"] = sorted(
            (record["period_start"], record["period_end"])
        )
    return record


def _through_json(record: dict[str, Any]) -> dict[str, Any]:
    """Return the record as a JSON reader reads it back after the codec writes it."""
    decoded: dict[str, Any] = orjson.loads(dumps(record))
    return decoded


# --- Examples ------------------------------------------------------------------------------------

BASE = {
    "occurred_at": "2024-03-05T14:22:01Z",
    "source": "salesforce",
    "source_id": "0175g00000AbCdEAAV",
    "actor": "005A1",
}
OPENED = {
    **BASE,
    "type": "opportunity_opened",
    "opportunity_id": "006A",
    "account_id": "001A",
    "amount": "48000.00",
    "currency": "EUR",
    "opportunity_type": "new",
    "stage": "discovery",
    "lead_ids": ["00QA", "00QB"],
    "expected_close": "2024-06-30",
}
WON = {
    **BASE,
    "type": "opportunity_won",
    "opportunity_id": "006A",
    "amount": "1",
    "currency": "EUR",
}
SPEND = {
    **BASE,
    "type": "campaign_spend_recorded",
    "campaign_id": "701A",
    "amount": "4800.00",
    "currency": "EUR",
    "period_start": "2024-03-01",
    "period_end": "2024-03-31",
}
TOUCH = {
    **BASE,
    "type": "touch_recorded",
    "lead_id": "00QA",
    "channel": "web",
    "touch_type": "visit",
}
CAPTURED = {**BASE, "type": "lead_captured", "lead_id": "00QA"}
SCORE = {**BASE, "type": "score_changed", "lead_id": "00QA", "score": 5, "model_version": "v1"}


def _refused(record: Any) -> InvalidFact:
    with pytest.raises(InvalidFact) as caught:
        parse_fact(record)
    return caught.value


# --- Round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", sorted(FACT_TYPES))
@given(data=st.data())
def test_every_fact_type_round_trips_through_its_record(type_name: str, data: st.DataObject):
    """Record → fact → record (through JSON) → fact gives back an equal fact, for every type."""
    fact = parse_fact(data.draw(records(type_name)))
    again = parse_fact(_through_json(fact_to_record(fact)))
    assert type(again) is type(fact)
    assert again == fact


@pytest.mark.parametrize("type_name", sorted(FACT_TYPES))
@given(data=st.data())
def test_canonical_record_is_a_fixed_point(type_name: str, data: st.DataObject):
    """Exporting a re-ingested export writes exactly the same bytes."""
    first = dumps(fact_to_record(parse_fact(data.draw(records(type_name)))))
    second = dumps(fact_to_record(parse_fact(orjson.loads(first))))
    assert second == first


@pytest.mark.parametrize("type_name", sorted(FACT_TYPES))
@given(data=st.data())
def test_every_fact_type_round_trips_through_the_store(type_name: str, data: st.DataObject):
    """FactMapper's stored event decodes to a fact equal to the one that was stored."""
    mapper = FactMapper()
    fact = parse_fact(data.draw(records(type_name)))
    again = mapper.to_domain_event(mapper.to_stored_event(fact))
    assert type(again) is type(fact)
    assert again == fact


def test_stored_event_restores_python_types():
    """A decoded stored event has Decimal amounts, aware UTC datetimes, dates and tuples again."""
    mapper = FactMapper()
    fact = mapper.to_domain_event(mapper.to_stored_event(parse_fact(OPENED)))
    assert fact.amount == Decimal("48000.00")
    assert isinstance(fact.amount, Decimal)
    assert str(fact.amount) == "48000.00"
    for stamp in (fact.occurred_at, fact.recorded_at):
        assert isinstance(stamp, datetime)
        assert stamp.utcoffset() == timedelta(0)
    assert fact.occurred_at == datetime(2024, 3, 5, 14, 22, 1, tzinfo=UTC)
    assert type(fact.expected_close) is date
    assert fact.expected_close == date(2024, 6, 30)
    assert fact.lead_ids == ("00QA", "00QB")
    assert isinstance(fact.lead_ids, tuple)
    assert fact.contact_ids == ()


def test_stored_event_restores_spend_period_dates():
    """Both dates of a spend period come back from the store as dates."""
    mapper = FactMapper()
    fact = mapper.to_domain_event(mapper.to_stored_event(parse_fact(SPEND)))
    assert (fact.period_start, fact.period_end) == (date(2024, 3, 1), date(2024, 3, 31))
    assert type(fact.period_start) is date
    assert type(fact.period_end) is date


def test_stored_event_keeps_the_fact_id():
    """The stored event is keyed by the fact id, and the decoded fact reports it."""
    mapper = FactMapper()
    stored = mapper.to_stored_event(parse_fact(WON))
    assert stored.originator_id == fact_id("salesforce", "0175g00000AbCdEAAV")
    assert stored.originator_version == 1
    assert mapper.to_domain_event(stored).id == stored.originator_id


def test_lead_updated_with_empty_attributes_round_trips():
    """A lead_updated that parse_fact accepted with empty attributes survives export and ingest."""
    fact = parse_fact({**BASE, "type": "lead_updated", "lead_id": "00QA", "attributes": {}})
    assert parse_fact(_through_json(fact_to_record(fact))) == fact


# --- Values accepted -----------------------------------------------------------------------------


def test_salesforce_timestamp_parses():
    """Salesforce's API form (milliseconds, +0000 offset) is read as the UTC instant it names."""
    fact = parse_fact({**CAPTURED, "occurred_at": "2024-03-05T14:22:01.000+0000"})
    assert fact.occurred_at == datetime(2024, 3, 5, 14, 22, 1, tzinfo=UTC)


def test_offset_timestamp_is_stored_in_utc():
    """A timestamp with an offset is converted to UTC."""
    fact = parse_fact({**CAPTURED, "occurred_at": "2024-03-05T15:22:01+01:00"})
    assert fact.occurred_at == datetime(2024, 3, 5, 14, 22, 1, tzinfo=UTC)
    assert fact.occurred_at.utcoffset() == timedelta(0)


def test_record_timestamps_are_written_in_utc_with_z():
    """The canonical record writes timestamps as RFC 3339 UTC with a Z suffix."""
    fact = parse_fact(
        {
            **CAPTURED,
            "occurred_at": "2024-03-05T15:22:01+01:00",
            "recorded_at": "2024-04-05T10:00:00-04:00",
        }
    )
    written = orjson.loads(dumps(fact_to_record(fact)))
    assert written["occurred_at"] == "2024-03-05T14:22:01Z"
    assert written["recorded_at"] == "2024-04-05T14:00:00Z"


@given(stamp=AWARE_DATETIMES)
def test_any_aware_timestamp_is_the_same_instant(stamp: datetime):
    """Whatever the offset, the parsed occurred_at is the same instant, in UTC."""
    fact = parse_fact({**CAPTURED, "occurred_at": stamp.isoformat()})
    assert fact.occurred_at == stamp
    assert fact.occurred_at.tzinfo is UTC


def test_float_amount_keeps_its_literal():
    """A JSON number amount becomes the decimal written, not the binary float's expansion."""
    line = (
        b'{"type":"opportunity_won","occurred_at":"2024-05-31T17:00:00Z","source":"salesforce",'
        b'"source_id":"w1","actor":"005A7","opportunity_id":"006A","amount":12500.1,"currency":"EUR"}'
    )
    fact = parse_fact(orjson.loads(line))
    assert fact.amount == Decimal("12500.1")
    assert str(fact.amount) == "12500.1"


@given(value=st.floats(min_value=0, allow_nan=False, allow_infinity=False))
def test_float_amount_is_its_shortest_repr(value: float):
    """Any non-negative float amount becomes the shortest decimal that reads back as that float."""
    amount = parse_fact({**WON, "amount": value}).amount
    assert amount == Decimal(repr(value))
    assert float(amount) == value


def test_integer_amount_parses():
    """A JSON integer amount is an exact Decimal."""
    assert parse_fact({**WON, "amount": 12500}).amount == Decimal(12500)


@given(amount=AMOUNTS)
def test_string_amount_keeps_its_digits(amount: Decimal):
    """A decimal-string amount keeps every digit, in the fact and in the export."""
    written = format(amount, "f")
    fact = parse_fact({**WON, "amount": written})
    assert fact.amount == amount
    assert orjson.loads(dumps(fact_to_record(fact)))["amount"] == written


def test_zero_amount_is_accepted():
    """Zero is a valid amount (never negative does not mean positive)."""
    assert parse_fact({**WON, "amount": "0.00"}).amount == Decimal("0.00")


@pytest.mark.parametrize("blank", [None, ""])
def test_blank_optional_value_is_absent(blank: Any):
    """An optional field given as null or "" parses to the same fact as one left out."""
    stamp = {"recorded_at": "2024-04-01T00:00:00Z"}
    assert parse_fact({**CAPTURED, **stamp, "email": blank}) == parse_fact({**CAPTURED, **stamp})


def test_strings_are_trimmed():
    """Leading and trailing whitespace is removed from string values and the envelope."""
    fact = parse_fact({**CAPTURED, "lead_id": " 00QA\t", "source": " salesforce "})
    assert fact.lead_id == "00QA"
    assert fact.source == "salesforce"


def test_integer_may_be_a_string_of_digits():
    """An integer field accepts a string of digits with an optional minus sign."""
    assert parse_fact({**SCORE, "score": "-5"}).score == -5


def test_single_day_spend_period_is_accepted():
    """A spend period may start and end on the same day."""
    fact = parse_fact({**SPEND, "period_end": "2024-03-01"})
    assert fact.period_start == fact.period_end


def test_recorded_at_in_the_record_is_kept():
    """A record's recorded_at (as export writes it) becomes the fact's ledger time."""
    fact = parse_fact({**CAPTURED, "recorded_at": "2024-04-05T10:00:00Z"})
    assert fact.recorded_at == datetime(2024, 4, 5, 10, 0, tzinfo=UTC)


def test_recorded_at_argument_stamps_a_record_without_one():
    """Without recorded_at in the record, the fact is stamped with the caller's recorded_at."""
    stamp = datetime(2024, 4, 5, 10, 0, tzinfo=UTC)
    assert parse_fact(CAPTURED, recorded_at=stamp).recorded_at == stamp


def test_record_recorded_at_wins_over_the_argument():
    """A recorded_at in the record is kept even when the caller passes another one."""
    stamp = datetime(2030, 1, 1, tzinfo=UTC)
    fact = parse_fact({**CAPTURED, "recorded_at": "2024-04-05T10:00:00Z"}, recorded_at=stamp)
    assert fact.recorded_at == datetime(2024, 4, 5, 10, 0, tzinfo=UTC)


def test_recorded_at_defaults_to_now():
    """Without any recorded_at, the fact is stamped with the current UTC time."""
    before = datetime.now(UTC)
    fact = parse_fact(CAPTURED)
    assert before <= fact.recorded_at <= datetime.now(UTC)
    assert fact.recorded_at.utcoffset() == timedelta(0)


# --- Fact ids ------------------------------------------------------------------------------------


def test_fact_id_is_stable():
    """The fact id of a (source, source_id) pair never changes (stored data depends on it)."""
    expected = uuid.UUID("1eddf4fd-9071-51d1-a956-7445b1809a94")
    assert fact_id("salesforce", "0175g00000AbCdEAAV") == expected


def test_fact_id_differs_by_source():
    """The same source_id from two sources names two different facts."""
    assert fact_id("salesforce", "42") != fact_id("hubspot", "42")


def test_fact_id_differs_by_source_id():
    """Two source ids from one source name two different facts."""
    assert fact_id("salesforce", "42") != fact_id("salesforce", "43")


@given(source=TEXT, source_id=TEXT)
def test_parsed_fact_is_keyed_by_its_fact_id(source: str, source_id: str):
    """A parsed fact's id is fact_id(source, source_id), however often it is parsed."""
    record = {**CAPTURED, "source": source, "source_id": source_id}
    assert parse_fact(record).id == fact_id(source, source_id)
    assert parse_fact(record).id == parse_fact(record).id


# --- Values refused ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["occurred_at", "recorded_at"])
@pytest.mark.parametrize("value", ["2024-03-05T14:22:01", "2024-03-05 14:22:01", "2024-03-05"])
def test_naive_timestamp_is_refused(field: str, value: str):
    """A timestamp without a timezone is refused, naming its field."""
    assert _refused({**CAPTURED, field: value}).field == field


@pytest.mark.parametrize("value", ["yesterday", "05/03/2024 14:22", 1709648521, True, ""])
def test_timestamp_that_is_not_iso_8601_is_refused(value: Any):
    """A timestamp that is not an ISO 8601 string is refused, naming occurred_at."""
    assert _refused({**CAPTURED, "occurred_at": value}).field == "occurred_at"


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_out_of_range_timestamp_is_refused(value: str):
    """A timestamp whose UTC instant is outside years 1-9999 is refused, naming its field."""
    assert _refused({**CAPTURED, "occurred_at": value}).field == "occurred_at"


@pytest.mark.parametrize(
    ("record", "field", "value"),
    [
        (SPEND, "period_start", "2024-02-30"),
        (SPEND, "period_end", "31/03/2024"),
        (SPEND, "period_end", "2024-03-31T00:00:00Z"),
        (OPENED, "expected_close", "2024-13-01"),
        (OPENED, "expected_close", 20240630),
    ],
)
def test_bad_date_is_refused(record: dict[str, Any], field: str, value: Any):
    """A date that is not a real YYYY-MM-DD calendar date is refused, naming its field."""
    assert _refused({**record, field: value}).field == field


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (WON, "amount"),
        ({**TOUCH, "currency": "EUR"}, "cost"),
        (
            {**BASE, "type": "contract_started", "account_id": "A", "contract_id": "C"}
            | {"currency": "EUR"},
            "arr",
        ),
    ],
)
@pytest.mark.parametrize("value", ["-1", "-0.01", -5, -0.5])
def test_negative_amount_is_refused(record: dict[str, Any], field: str, value: Any):
    """A negative amount is refused, naming its field."""
    assert _refused({**record, field: value}).field == field


@pytest.mark.parametrize(
    "value", ["NaN", "nan", "sNaN", "Infinity", "-Infinity", float("nan"), float("inf")]
)
def test_non_finite_amount_is_refused(value: Any):
    """NaN and infinite amounts are refused, naming the amount."""
    assert _refused({**WON, "amount": value}).field == "amount"


@pytest.mark.parametrize("value", ["12,500", "abc", "$12", "12 500", True, [], {"value": 1}])
def test_garbage_amount_is_refused(value: Any):
    """An amount that is not a decimal number is refused, naming the amount."""
    assert _refused({**WON, "amount": value}).field == "amount"


@pytest.mark.parametrize("value", ["usd", "Usd", "US", "USDX", "€", "U$D"])
def test_currency_that_is_not_three_capitals_is_refused(value: str):
    """A currency that is not an ISO 4217-shaped code (three capitals) is refused."""
    assert _refused({**WON, "currency": value}).field == "currency"


def test_cost_without_currency_is_refused():
    """A touch cost with no currency is refused, naming the currency."""
    assert _refused({**TOUCH, "cost": "35.00"}).field == "currency"


@pytest.mark.parametrize("value", ["lead_created", "LEAD_CAPTURED", "", None, 7, ["lead_captured"]])
def test_unknown_type_is_refused(value: Any):
    """A record whose type is not in the catalogue is refused, naming the type."""
    assert _refused({**CAPTURED, "type": value}).field == "type"


def test_missing_type_is_refused():
    """A record without a type is refused, naming the type."""
    record = {k: v for k, v in CAPTURED.items() if k != "type"}
    assert _refused(record).field == "type"


@pytest.mark.parametrize("field", ["oportunity_id", "amount", "id", "timestamp", "originator_id"])
def test_unknown_field_is_refused(field: str):
    """A field the type does not have (a typo, another type's field, a storage field) is refused."""
    assert _refused({**CAPTURED, field: "x"}).field == field


def test_record_that_is_not_an_object_is_refused():
    """A JSON value that is not an object is refused."""
    with pytest.raises(InvalidFact):
        parse_fact(["lead_captured"])  # type: ignore[arg-type]


MINIMAL: dict[str, dict[str, Any]] = {
    name: {
        **BASE,
        "type": name,
        **{
            field: {
                str: "x",
                int: 1,
                Decimal: "1",
                date: "2024-03-01",
                tuple[str, ...]: ["x"],
                dict[str, Any]: {"k": "v"},
            }[_kind(hint)]
            for field, hint in domain_fields(cls).items()
            if field in required_fields(cls)
        },
        **({"currency": "EUR"} if "currency" in required_fields(cls) else {}),
        **({"opportunity_type": "new"} if name == "opportunity_opened" else {}),
    }
    for name, cls in FACT_TYPES.items()
}
REQUIRED_CASES = [
    (name, field)
    for name, cls in sorted(FACT_TYPES.items())
    for field in sorted(required_fields(cls) | set(ENVELOPE))
]


@pytest.mark.parametrize("type_name", sorted(FACT_TYPES))
def test_minimal_record_is_accepted(type_name: str):
    """A record with only the envelope and the required fields is a valid fact."""
    assert isinstance(parse_fact(MINIMAL[type_name]), Fact)


@pytest.mark.parametrize(("type_name", "field"), REQUIRED_CASES)
@pytest.mark.parametrize("how", ["left out", "null", "empty"])
def test_missing_required_field_is_refused(type_name: str, field: str, how: str):
    """A required field that is left out, null or "" is refused, naming the field."""
    record = dict(MINIMAL[type_name])
    if how == "left out":
        del record[field]
    else:
        record[field] = None if how == "null" else ""
    assert _refused(record).field == field


def test_whitespace_only_string_is_refused():
    """A string of spaces is not a value: it is refused, naming its field."""
    assert _refused({**CAPTURED, "lead_id": "   "}).field == "lead_id"


@pytest.mark.parametrize("value", ["New", "upsell", "new logo", "cross-sell"])
def test_bad_opportunity_type_is_refused(value: str):
    """An opportunity_type other than new, expansion or renewal is refused."""
    assert _refused({**OPENED, "opportunity_type": value}).field == "opportunity_type"


def test_period_end_before_period_start_is_refused():
    """A spend period that ends before it starts is refused, naming period_end."""
    assert _refused({**SPEND, "period_end": "2024-02-29"}).field == "period_end"


@pytest.mark.parametrize("value", [5.0, "5.5", "five", True, "1e3"])
def test_non_integer_score_is_refused(value: Any):
    """A score that is not an integer is refused, naming the score."""
    assert _refused({**SCORE, "score": value}).field == "score"


def test_oversized_integer_is_refused():
    """An integer string too long to convert is refused, naming its field."""
    assert _refused({**SCORE, "score": "1" * 5000}).field == "score"


@pytest.mark.parametrize("value", ["00QA", {"id": "00QA"}, ["00QA", ""], ["00QA", None]])
def test_id_list_that_is_not_an_array_of_ids_is_refused(value: Any):
    """A lead_ids value that is not a JSON array of non-empty strings is refused."""
    assert _refused({**OPENED, "lead_ids": value}).field == "lead_ids"


@pytest.mark.parametrize("value", ["title=CFO", ["CFO"], 1])
def test_attributes_that_are_not_an_object_are_refused(value: Any):
    """An attributes value that is not a JSON object is refused."""
    assert _refused({**CAPTURED, "attributes": value}).field == "attributes"


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"source_id": "x" * 201}, "source_id"),
        ({"source": "€" * 67}, "source"),  # 201 bytes in UTF-8
        ({"actor": "a" * 300}, "actor"),
        ({"lead_id": "L" * 201}, "lead_id"),
        ({"channel": "😀" * 51}, "channel"),  # 204 bytes
        ({"campaign_id": "c" * 201}, "campaign_id"),
    ],
)
def test_an_id_or_label_longer_than_an_index_allows_is_refused(fields: dict, where: str):
    """Ids and labels are index keys: more than 200 bytes is refused, naming the field."""
    base = {"lead_id": "L1", "channel": "web", "touch_type": "visit"}
    record = {**factory_record("touch_recorded", "t1", **base), **fields}
    with pytest.raises(InvalidFact) as refused:
        parse_fact(record)
    assert refused.value.field == where
    assert "at most 200 bytes" in refused.value.reason


def test_ids_up_to_the_limit_and_long_free_text_are_accepted():
    """200 bytes is allowed (50 four-byte characters too); reasons and names are not keys."""
    parse_fact(factory_record("touch_recorded", "x" * 200, lead_id="😀" * 50, channel="web",
                              touch_type="visit"))
    lost = parse_fact(factory_record("opportunity_lost", "o1", opportunity_id="O1",
                                     reason="r" * 5000))
    assert len(lost.reason) == 5000


def test_long_ids_in_lists_and_attributes_are_refused():
    """Named leads and the attributes reports group by are keys too."""
    with pytest.raises(InvalidFact) as refused:
        parse_fact(factory_record("opportunity_opened", "o1", opportunity_id="O1",
                                  account_id="A1", amount="1", currency="USD",
                                  opportunity_type="new", stage="s", lead_ids=["L1", "L" * 201]))
    assert refused.value.field == "lead_ids"
    with pytest.raises(InvalidFact) as refused:
        parse_fact(factory_record("lead_updated", "u1", lead_id="L1",
                                  attributes={"segment": "s" * 201, "notes": "n" * 5000}))
    assert refused.value.field == "attributes.segment"
    kept = parse_fact(factory_record("lead_updated", "u2", lead_id="L1",
                                     attributes={"notes": "n" * 5000}))
    assert len(kept.attributes["notes"]) == 5000
