"""The canonical form of a fact: JSON records in, facts out, and back (see docs/events.md).

One representation serves three places: the JSONL files ``ingest`` reads and ``export`` writes,
the state stored in the event store (via :class:`FactMapper`, serialised with orjson), and the
``--format json`` output of the CLI. Datetimes are RFC 3339 in UTC (``Z``), money is a decimal
string, dates are ``YYYY-MM-DD``, lists are JSON arrays.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

import orjson
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic

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

CURRENCY = re.compile(r"^[A-Z]{3}$")
AMOUNT = re.compile(r"^[0-9]+(\.[0-9]+)?$")
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
ISO_TIMESTAMP = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")
INTEGER = re.compile(r"^-?[0-9]{1,18}$")
Converter = Callable[[Any, str], Any]


def parse_datetime(value: Any, field: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries a timezone, returned in UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        try:  # fromisoformat reads more than RFC 3339; the pattern keeps to the usual forms
            parsed = datetime.fromisoformat(text if ISO_TIMESTAMP.match(text) else "")
        except ValueError:
            msg = f"{value!r} is not an ISO 8601 timestamp (e.g. 2025-03-05T14:22:01Z)"
            raise InvalidFact(msg, field) from None
    else:
        raise InvalidFact(f"expected a timestamp string, got {type(value).__name__}", field)
    if parsed.tzinfo is UTC:
        return parsed  # what astimezone(UTC) returns for it
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        msg = f"{value!r} has no timezone; add Z or an offset such as +01:00"
        raise InvalidFact(msg, field)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidFact(f"{value!r} is outside the years 1-9999 in UTC", field) from None


def parse_date(value: Any, field: str) -> date:
    """Parse an ISO date (YYYY-MM-DD)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and ISO_DATE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InvalidFact(f"{value!r} is not a date (YYYY-MM-DD)", field)


def parse_decimal(value: Any, field: str) -> Decimal:
    """Parse a non-negative amount given as a decimal string (or a JSON number)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise InvalidFact(f'expected an amount such as "1250.00", got {value!r}', field)
    text = value.strip() if isinstance(value, str) else None
    if text is not None and not AMOUNT.match(text):
        raise InvalidFact(f'{value!r} is not an amount (e.g. "1250.00")', field)
    try:
        # A JSON number arrives as float; its shortest repr is the literal that was written.
        amount = Decimal(repr(value) if isinstance(value, float) else text or str(value))
    except InvalidOperation:
        raise InvalidFact(f'{value!r} is not an amount (e.g. "1250.00")', field) from None
    if not amount.is_finite() or amount.is_signed():
        raise InvalidFact(f"{value!r} must be a finite amount of zero or more", field)
    return amount


def parse_int(value: Any, field: str) -> int:
    """Parse an integer (a JSON integer or a string of digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    if isinstance(value, str) and INTEGER.match(value.strip()):
        return int(value)
    raise InvalidFact(f"expected an integer, got {value!r}", field)


def parse_str(value: Any, field: str) -> str:
    """Parse a non-blank string."""
    if type(value) is str:
        stripped = value.strip()
        if stripped:
            return stripped
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidFact(f"expected a non-empty string, got {value!r}", field)
    return value.strip()


def parse_str_list(value: Any, field: str) -> tuple[str, ...]:
    """Parse a JSON array of non-blank strings."""
    if not isinstance(value, (list, tuple)):
        raise InvalidFact(f"expected a list of ids, got {value!r}", field)
    return tuple(parse_str(v, field) for v in value)


def parse_mapping(value: Any, field: str) -> dict[str, Any]:
    """Parse a JSON object."""
    if not isinstance(value, Mapping):
        raise InvalidFact(f"expected an object, got {value!r}", field)
    return dict(value)


BASE_CONVERTERS: dict[Any, Converter] = {
    str: parse_str,
    int: parse_int,
    Decimal: parse_decimal,
    datetime: parse_datetime,
    date: parse_date,
    tuple[str, ...]: parse_str_list,
    dict[str, Any]: parse_mapping,
}


def _converter(annotation: Any) -> tuple[Converter, bool]:
    """Return (converter, optional) for a field annotation."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return BASE_CONVERTERS[inner[0]], True
    return BASE_CONVERTERS[annotation], False


@cache
def field_converters(cls: type[Fact]) -> dict[str, tuple[Converter, bool]]:
    """The converter of every domain field of ``cls``."""
    return {name: _converter(hint) for name, hint in domain_fields(cls).items()}


@cache
def _shape(cls: type[Fact]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The keys a record of ``cls`` may carry, and the ones it must carry (sorted)."""
    allowed = frozenset({"type", "recorded_at", *ENVELOPE, *field_converters(cls)})
    return allowed, tuple(sorted(required_fields(cls) | set(ENVELOPE)))


def _check_domain_rules(values: dict[str, Any]) -> None:
    currency = values.get("currency")
    if currency is not None and not CURRENCY.match(currency):
        raise InvalidFact(f"{currency!r} is not an ISO 4217 code such as USD", "currency")
    for amount_field in ("cost",):
        if values.get(amount_field) is not None and currency is None:
            raise InvalidFact(f"{amount_field} needs a currency", "currency")
    kind = values.get("opportunity_type")
    if kind is not None and kind not in OPPORTUNITY_TYPES:
        allowed = ", ".join(sorted(OPPORTUNITY_TYPES))
        raise InvalidFact(f"{kind!r} is not one of {allowed}", "opportunity_type")
    start, end = values.get("period_start"), values.get("period_end")
    if start is not None and end is not None and end < start:
        raise InvalidFact("period_end is before period_start", "period_end")


def fact_class(type_name: Any) -> type[Fact]:
    """Return the fact class for a canonical ``type`` value."""
    try:
        return FACT_TYPES[type_name]
    except (KeyError, TypeError):
        msg = f"unknown event type {type_name!r}; see docs/events.md for the catalogue"
        raise InvalidFact(msg, "type") from None


# Identifiers and labels are keys of the projection's tables and indexes: a PostgreSQL B-tree
# entry holds at most 2,704 bytes, and an index holds up to seven of them (a touch's).
MAX_KEY_BYTES = 200
FREE_TEXT = frozenset({"reason", "name", "change_note", "company", "email"})  # never keys
KEYED_ATTRIBUTES = ("account_id", "lead_source", "segment", "country", "owner", "channel")


SHORT_KEY = MAX_KEY_BYTES // 4  # characters that cannot exceed the limit in UTF-8


def check_key(value: str, field: str) -> None:
    """Refuse an identifier or label longer than :data:`MAX_KEY_BYTES` in UTF-8."""
    if len(value) > SHORT_KEY and (size := len(value.encode())) > MAX_KEY_BYTES:
        raise InvalidFact(
            f"{size} bytes; an id or label is at most {MAX_KEY_BYTES} bytes (UTF-8), shorten it",
            field,
        )


def _check_keys(values: list[Any], plan: _Plan) -> None:
    """Apply :func:`check_key` to the keyed lists and attributes of a record's parsed ``values``.

    (A keyed string is checked as it is parsed.)
    """
    for index in plan.keyed:
        value, field = values[index], plan.names[index]
        if type(value) is tuple:
            for item in value:
                check_key(item, field)
        elif type(value) is dict:
            for name in KEYED_ATTRIBUTES:
                if (item := value.get(name)) is not None:
                    check_key(str(item), f"{field}.{name}")


class _Plan(typing.NamedTuple):
    """What parsing a record of one fact class needs, worked out once per class."""

    allowed: frozenset[str]
    required: tuple[str, ...]
    # (name, converter, optional, is a plain string, is a key, default factory) per domain field,
    # in dataclass field order; the factory gives the default of a field the record leaves out.
    fields: tuple[tuple[str, Converter, bool, bool, bool, Callable[[], Any]], ...]
    names: tuple[str, ...]
    rules: bool  # whether _check_domain_rules can refuse anything of this class
    keyed: tuple[int, ...]  # the lists of ids, and the attributes, that hold ids or labels


RULE_FIELDS = frozenset({"currency", "cost", "opportunity_type", "period_start", "period_end"})
ENVELOPE_STATE = ("originator_id", "originator_version", "timestamp", *ENVELOPE)


def _default_factory(spec: dataclasses.Field[Any]) -> Callable[[], Any]:
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory
    default = None if spec.default is dataclasses.MISSING else spec.default
    return lambda: default


@cache
def _plan(cls: type[Fact]) -> _Plan:
    allowed, required = _shape(cls)
    converters = field_converters(cls)
    specs = {f.name: f for f in dataclasses.fields(cls)}
    # The state is built in dataclass field order, exactly as the dataclass __init__ sets it.
    assert tuple(specs) == (*ENVELOPE_STATE, *converters), cls
    fields = tuple(
        (
            name,
            convert,
            optional,
            convert is parse_str,
            convert is parse_str and name not in FREE_TEXT,
            _default_factory(specs[name]),
        )
        for name, (convert, optional) in converters.items()
    )
    keyed = tuple(
        i
        for i, (name, (convert, _)) in enumerate(converters.items())
        if (convert is parse_str_list and name not in FREE_TEXT)
        or (convert is parse_mapping and name == "attributes")  # an amendment's changes: parsed
    )
    rules = bool(RULE_FIELDS & set(specs))
    return _Plan(allowed, required, fields, tuple(converters), rules, keyed)


_new = object.__new__
_set = object.__setattr__


def parse_fact(  # noqa: C901, PLR0912, PLR0915 - the hot path of every load, inlined on purpose
    record: Mapping[str, Any], *, recorded_at: datetime | None = None
) -> Fact:
    """Turn one canonical record into a fact, or raise :class:`InvalidFact` naming the field.

    ``recorded_at`` in the record (as written by ``export``) is kept, so that restoring an export
    keeps the original ledger times; otherwise the fact is stamped with ``recorded_at`` or now.

    The fact is built as its dataclass ``__init__`` would build it (the same ``__dict__``, in
    the same order), without the frozen dataclass's per-field ``object.__setattr__`` calls.
    """
    if not isinstance(record, Mapping):
        raise InvalidFact("a record must be a JSON object")
    cls = fact_class(record.get("type"))
    plan = _plan(cls)
    if not record.keys() <= plan.allowed:
        name = min(set(record) - plan.allowed)
        raise InvalidFact(f"unknown field for {cls.type_name}; see docs/events.md", name)
    get = record.get
    for name in plan.required:
        if get(name) in (None, ""):
            raise InvalidFact(f"required by {cls.type_name} but missing or blank", name)
    values: list[Any] = []
    append = values.append
    for name, convert, optional, plain, key, default in plan.fields:
        raw = get(name)
        if raw is None or (optional and raw == ""):
            append(default())
        elif plain and type(raw) is str and (text := raw.strip()):
            if key and len(text) > SHORT_KEY:
                check_key(text, name)
            append(text)  # parse_str's result, without the call
        else:
            value = convert(raw, name)
            if key:
                check_key(value, name)
            append(value)
    if plan.rules:
        # Every field the rules read defaults to None, so defaults read as "not given".
        _check_domain_rules(dict(zip(plan.names, values, strict=True)))
    if plan.keyed:
        _check_keys(values, plan)
    # The envelope, in the order its refusals are reported; a non-blank string needs no call.
    source = record["source"]
    if type(source) is not str or not (source := source.strip()):
        source = parse_str(record["source"], "source")
    source_id = record["source_id"]
    if type(source_id) is not str or not (source_id := source_id.strip()):
        source_id = parse_str(record["source_id"], "source_id")
    if len(source) > SHORT_KEY or len(source_id) > SHORT_KEY:
        check_key(source, "source")
        check_key(source_id, "source_id")
    originator_id = fact_id(source, source_id)
    stamp = get("recorded_at")
    timestamp = (
        parse_datetime(stamp, "recorded_at")
        if stamp is not None
        else recorded_at or datetime.now(UTC)
    )
    occurred_at = parse_datetime(record["occurred_at"], "occurred_at")
    actor = record["actor"]
    if type(actor) is not str or not (actor := actor.strip()):
        actor = parse_str(record["actor"], "actor")
    if len(actor) > SHORT_KEY:
        check_key(actor, "actor")
    state: dict[str, Any] = {
        "originator_id": originator_id,
        "originator_version": 1,
        "timestamp": timestamp,
        "occurred_at": occurred_at,
        "source": source,
        "source_id": source_id,
        "actor": actor,
    }
    state.update(zip(plan.names, values, strict=True))
    fact: Fact = _new(cls)
    _set(fact, "__dict__", state)
    return fact


def fact_to_record(fact: Fact) -> dict[str, Any]:
    """The canonical record of a fact (``parse_fact`` reads it back to an equal fact)."""
    record: dict[str, Any] = {
        "type": fact.type_name,
        "occurred_at": fact.occurred_at,
        "recorded_at": fact.recorded_at,
        "source": fact.source,
        "source_id": fact.source_id,
        "actor": fact.actor,
    }
    required = required_fields(type(fact))
    record.update(
        (name, value)
        for name, value in fact.payload().items()
        if name in required or value not in (None, (), {})
    )
    return record


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # positional notation: "0.0000010", never "1.0E-6"
    raise TypeError(type(value).__name__)


def dumps(record: Any) -> bytes:
    """Serialise a record (datetimes as RFC 3339 UTC with Z, Decimals as strings)."""
    return orjson.dumps(record, default=_default, option=orjson.OPT_UTC_Z)


class OrjsonTranscoder(Transcoder):
    """Stored-state serialisation with orjson; typing is restored by :class:`FactMapper`."""

    def encode(self, obj: Any) -> bytes:
        """Encode a state dict."""
        return dumps(obj)

    def decode(self, data: bytes) -> Any:
        """Decode a state dict (strings stay strings until the mapper types them)."""
        return orjson.loads(data)


@cache
def _stored_converters(cls: type[Fact]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """Only the fields whose stored JSON form differs from the Python value need converting."""
    out: list[tuple[str, Callable[[Any], Any]]] = [
        ("timestamp", datetime.fromisoformat),
        ("occurred_at", datetime.fromisoformat),
    ]
    for name, hint in domain_fields(cls).items():
        inner = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        kind = inner[0] if len(inner) == 1 else hint
        if kind is Decimal:
            out.append((name, Decimal))
        elif kind is datetime:
            out.append((name, datetime.fromisoformat))
        elif kind is date:
            out.append((name, date.fromisoformat))
        elif kind == tuple[str, ...]:
            out.append((name, tuple))
    return tuple(out)


@cache
def _stored_class(cls: type[Fact]) -> tuple[str, int]:
    """The topic and class version stored with events of ``cls``."""
    return get_topic(cls), getattr(cls, "class_version", 1)


class FactMapper(Mapper[Any]):
    """Maps facts to stored events and back, restoring field types from the fact's class."""

    def __init__(self) -> None:
        """Use the orjson transcoder; facts are neither compressed nor encrypted."""
        super().__init__(transcoder=OrjsonTranscoder())

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        """Serialise a fact's state, keyed by its stream id and version."""
        topic, class_version = _stored_class(domain_event.__class__)
        state = vars(domain_event).copy()
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        if class_version > 1:
            state["class_version"] = class_version
        # StoredEvent(originator_id, originator_version, topic, state), without the frozen
        # dataclass's per-field object.__setattr__ calls.
        stored: StoredEvent = _new(StoredEvent)
        _set(
            stored,
            "__dict__",
            {
                "originator_id": originator_id,
                "originator_version": originator_version,
                "topic": topic,
                "state": dumps(state),
            },
        )
        return stored

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        """Rebuild a fact from its stored state, upcasting older class versions."""
        cls = resolve_topic(stored_event.topic)
        state: dict[str, Any] = orjson.loads(stored_event.state)
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        for name, convert in _stored_converters(cls):
            value = state.get(name)
            if value is not None:
                state[name] = convert(value)
        state["originator_id"] = stored_event.originator_id
        state["originator_version"] = stored_event.originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event
