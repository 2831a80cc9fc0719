"""The ingest fast path gives exactly what the straightforward code gave.

``fact_id`` computes uuid5 with SHA-1 directly, ``parse_fact`` builds a fact's ``__dict__``
without the frozen dataclass ``__init__``, ``stamped`` copies a fact instead of
``dataclasses.replace``, and ``FactMapper.to_stored_event`` skips per-event lookups. Each is
checked here against a reference: ``uuid.uuid5``, the dataclass constructor, ``replace``, and
the earlier ``parse_fact`` / ``to_stored_event`` (kept below, verbatim but for names), down to
the order of state keys, the stored bytes and the field and reason of every refusal.
"""

from __future__ import annotations

import dataclasses
import pickle
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from hypothesis import given
from hypothesis import strategies as st

from ledger.codec import (
    ISO_TIMESTAMP,
    FactMapper,
    _check_domain_rules,
    _shape,
    dumps,
    fact_class,
    field_converters,
    parse_datetime,
    parse_fact,
    parse_str,
)
from ledger.errors import InvalidFact
from ledger.events import FACT_NAMESPACE, FACT_TYPES, Fact, fact_id, stamped
from tests.unit.test_codec import records

MAPPER = FactMapper()
STAMP = datetime(2025, 3, 5, 14, 22, 1, 123456, tzinfo=UTC)

# --- The reference implementations (the code before the fast path) -------------------------------


def reference_parse_datetime(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            if not ISO_TIMESTAMP.match(value.strip()):
                raise ValueError(value)  # noqa: TRY301
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            msg = f"{value!r} is not an ISO 8601 timestamp (e.g. 2025-03-05T14:22:01Z)"
            raise InvalidFact(msg, field) from None
    else:
        raise InvalidFact(f"expected a timestamp string, got {type(value).__name__}", field)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        msg = f"{value!r} has no timezone; add Z or an offset such as +01:00"
        raise InvalidFact(msg, field)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidFact(f"{value!r} is outside the years 1-9999 in UTC", field) from None


def reference_parse_fact(record: Any, *, recorded_at: datetime) -> Fact:
    if not isinstance(record, Mapping):
        raise InvalidFact("a record must be a JSON object")
    cls = fact_class(record.get("type"))
    converters = field_converters(cls)
    allowed, required = _shape(cls)
    if not record.keys() <= allowed:
        name = min(set(record) - allowed)
        raise InvalidFact(f"unknown field for {cls.type_name}; see docs/events.md", name)
    for name in required:
        if record.get(name) in (None, ""):
            raise InvalidFact(f"required by {cls.type_name} but missing or blank", name)
    values: dict[str, Any] = {}
    for name, (convert, optional) in converters.items():
        raw = record.get(name)
        if raw is None or (optional and raw == ""):
            continue
        values[name] = convert(raw, name)
    _check_domain_rules(values)
    source = parse_str(record["source"], "source")
    source_id = parse_str(record["source_id"], "source_id")
    stamp = record.get("recorded_at")
    build: Any = cls
    fact: Fact = build(
        originator_id=uuid.uuid5(FACT_NAMESPACE, f"{len(source)}:{source}:{source_id}"),
        originator_version=1,
        timestamp=(
            reference_parse_datetime(stamp, "recorded_at") if stamp is not None else recorded_at
        ),
        occurred_at=reference_parse_datetime(record["occurred_at"], "occurred_at"),
        source=source,
        source_id=source_id,
        actor=parse_str(record["actor"], "actor"),
        **values,
    )
    return fact


def reference_stored_event(fact: Any) -> StoredEvent:
    state = dict(vars(fact))
    originator_id = state.pop("originator_id")
    originator_version = state.pop("originator_version")
    class_version = getattr(type(fact), "class_version", 1)
    if class_version > 1:
        state["class_version"] = class_version
    return StoredEvent(
        originator_id=originator_id,
        originator_version=originator_version,
        topic=get_topic(type(fact)),
        state=dumps(state),
    )


def _outcome(parse: Any, record: Any) -> Any:
    try:
        return parse(record, recorded_at=STAMP)
    except InvalidFact as error:
        return ("refused", error.field, error.reason)


def assert_identical(fast: Fact, slow: Fact) -> None:
    """The same class, state (keys in the same order), and the same stored event."""
    assert type(fast) is type(slow)
    assert list(vars(fast).items()) == list(vars(slow).items())
    assert fast == slow
    assert MAPPER.to_stored_event(fast) == reference_stored_event(slow)


# --- fact_id -------------------------------------------------------------------------------------


@given(st.text(), st.text())
def test_fact_id_is_uuid5(source: str, source_id: str):
    """fact_id is byte for byte uuid.uuid5 of the length-prefixed name, and behaves as a UUID."""
    fast = fact_id(source, source_id)
    slow = uuid.uuid5(FACT_NAMESPACE, f"{len(source)}:{source}:{source_id}")
    assert type(fast) is uuid.UUID
    assert fast.bytes == slow.bytes
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert str(fast) == str(slow)
    assert (fast.version, fast.variant, fast.is_safe) == (5, uuid.RFC_4122, slow.is_safe)
    assert pickle.loads(pickle.dumps(fast)) == slow  # noqa: S301 - our own bytes
    assert {fast: 1}[slow] == 1


def test_fact_id_of_known_values():
    """Pinned values (existing ledgers are keyed by them)."""
    assert str(fact_id("salesforce", "0175g00000AbCdEAAV")) == str(
        uuid.uuid5(FACT_NAMESPACE, "10:salesforce:0175g00000AbCdEAAV")
    )
    assert fact_id("", "") == uuid.uuid5(FACT_NAMESPACE, "0::")
    assert fact_id("hübspot", "ü:1") == uuid.uuid5(FACT_NAMESPACE, "7:hübspot:ü:1")


# --- parse_fact ----------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", sorted(FACT_TYPES))
@given(data=st.data())
def test_parse_fact_builds_what_the_dataclass_builds(type_name: str, data: st.DataObject):
    """Every fact type: the same state, in the same order, as the dataclass constructor."""
    record = data.draw(records(type_name))
    fast = parse_fact(record, recorded_at=STAMP)
    assert_identical(fast, reference_parse_fact(record, recorded_at=STAMP))
    rebuilt: Any = type(fast)
    assert_identical(fast, rebuilt(**vars(fast)))


def test_default_values_are_not_shared():
    """A default list/dict is a new object per fact, as the dataclass default_factory gives."""
    base = {
        "type": "lead_captured",
        "occurred_at": "2025-03-05T14:22:01Z",
        "source": "s",
        "actor": "a",
        "lead_id": "L",
    }
    one = parse_fact({**base, "source_id": "1"})
    two = parse_fact({**base, "source_id": "2"})
    assert one.attributes == two.attributes == {}  # type: ignore[attr-defined]
    assert one.attributes is not two.attributes  # type: ignore[attr-defined]


def test_parse_fact_without_recorded_at_is_stamped_now():
    """No recorded_at and no stamp: the fact is stamped with the current time, in UTC."""
    before = datetime.now(UTC)
    fact = parse_fact(
        {
            "type": "lead_accepted",
            "occurred_at": "2025-03-05T14:22:01Z",
            "source": "s",
            "source_id": "1",
            "actor": "a",
            "lead_id": "L",
            "owner": "o",
        }
    )
    assert before <= fact.recorded_at <= datetime.now(UTC)
    assert fact.recorded_at.tzinfo is UTC


ODD_VALUES = st.sampled_from(
    [
        None,
        "",
        "  ",
        " x ",
        0,
        -1,
        1.5,
        True,
        [],
        ["a", " "],
        {},
        {"k": 1},
        "x",
        "usd",
        "USD",
        "new",
        "-1",
        "12.50",
        "1e3",
        "2025-01-01",
        "2025-13-01",
        "2025-01-01T00:00:00",
        "2025-01-01T00:00:00Z",
        " 2025-01-01T00:00:00+01:00 ",
        "0001-01-01T00:30:00+01:00",
        "20250101T000000Z",
        "9999-12-31T23:59:59-01:00",
    ]
)


@pytest.mark.parametrize("type_name", sorted(FACT_TYPES))
@given(data=st.data())
def test_parse_fact_refuses_what_it_refused(type_name: str, data: st.DataObject):
    """Damaged records: the same fact, or the same refusal (field and reason)."""
    record: dict[str, Any] = data.draw(records(type_name))
    keys = sorted(set(record) | {"recorded_at", "currency", "unknown", "type", "cost"})
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(keys))
        if data.draw(st.booleans()):
            record.pop(key, None)
        else:
            record[key] = data.draw(ODD_VALUES)
    fast = _outcome(parse_fact, record)
    slow = _outcome(reference_parse_fact, record)
    if isinstance(slow, Fact):
        assert_identical(fast, slow)
    else:
        assert fast == slow


@pytest.mark.parametrize(
    "value",
    [
        "2025-03-05T14:22:01Z",
        "2025-03-05T14:22:01.5+00:00",
        "2025-03-05 14:22:01-05:30",
        " 2025-03-05T14:22:01+01:00\n",
        "2025-03-05T14:22:01",
        "2025-03-05",
        "20250305T142201Z",
        "0001-01-01T00:00:00+00:01",
        "nonsense",
        12,
        datetime(2025, 3, 5, tzinfo=timezone(timedelta(hours=2))),
        datetime(2025, 3, 5, tzinfo=UTC),
        datetime(2025, 3, 5),  # noqa: DTZ001
    ],
)
def test_parse_datetime_as_before(value: Any):
    """The same instant (and tzinfo), or the same refusal."""

    def run(parse: Any) -> Any:
        try:
            parsed = parse(value, "occurred_at")
        except InvalidFact as error:
            return ("refused", error.field, error.reason)
        return (parsed, parsed.tzinfo)

    assert run(parse_datetime) == run(reference_parse_datetime)


# --- stamped and to_stored_event -----------------------------------------------------------------


@pytest.mark.parametrize("type_name", sorted(FACT_TYPES))
@given(data=st.data())
def test_stamped_is_replace(type_name: str, data: st.DataObject):
    """stamped(fact, t) is dataclasses.replace(fact, timestamp=t), and leaves fact unchanged."""
    fact = parse_fact(data.draw(records(type_name)), recorded_at=STAMP)
    before = list(vars(fact).items())
    later = STAMP + timedelta(days=1)
    fast = stamped(fact, later)
    assert fast is not fact
    assert_identical(fast, dataclasses.replace(fact, timestamp=later))
    assert fast.recorded_at == later
    assert list(vars(fact).items()) == before


def test_stamped_decoded_fact_is_replace():
    """A fact read back from the store (state in stored order) is stamped through replace."""
    fact = parse_fact(
        {
            "type": "opportunity_won",
            "occurred_at": "2025-03-05T14:22:01Z",
            "source": "s",
            "source_id": "1",
            "actor": "a",
            "opportunity_id": "O",
            "amount": "10.50",
            "currency": "EUR",
        },
        recorded_at=STAMP,
    )
    decoded = MAPPER.to_domain_event(MAPPER.to_stored_event(fact))
    assert list(vars(decoded)) != list(vars(fact))  # the ids come last
    assert_identical(stamped(decoded, STAMP), dataclasses.replace(decoded, timestamp=STAMP))


def test_stored_event_is_a_stored_event():
    """The mapper's stored event is an ordinary, equal, frozen StoredEvent."""
    fact = parse_fact(
        {
            "type": "lead_accepted",
            "occurred_at": "2025-03-05T14:22:01Z",
            "source": "s",
            "source_id": "1",
            "actor": "a",
            "lead_id": "L",
            "owner": "o",
        },
        recorded_at=STAMP,
    )
    stored = MAPPER.to_stored_event(fact)
    assert type(stored) is StoredEvent
    assert stored == reference_stored_event(fact)
    assert dataclasses.astuple(stored) == dataclasses.astuple(reference_stored_event(fact))
    with pytest.raises(dataclasses.FrozenInstanceError):
        stored.topic = "x"  # type: ignore[misc]
    assert MAPPER.to_domain_event(stored) == fact
