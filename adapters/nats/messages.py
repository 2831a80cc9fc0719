"""One JetStream message → pipeline items: its facts, or why its records are not facts.

A message's payload holds canonical records (docs/events.md) as UTF-8 JSON: one record (a JSON
object), a JSON array of records, or JSON lines (one record per line). Every item carries the
message's stream sequence as its position. A rejected record is located as
``<subject>@<stream>:<sequence>``, followed by ``[n]`` (1-based) when the message holds several
records, so it can be found again with ``nats stream get <stream> <sequence>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
from nats.aio.msg import Msg

from adapters.pipeline import Item, Reject
from ledger.codec import parse_fact
from ledger.errors import InvalidFact

SHAPE = "a message holds a JSON object, a JSON array of objects, or JSON lines"


Entry = tuple[str, Any, str | None]  # a record's raw text, its JSON value, or why it is not JSON


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _later(text: str) -> Callable[[], str]:
    """The record's text, for a correction the pipeline rejects after decoding."""
    return lambda: text


def _entries(payload: bytes) -> list[Entry]:
    """The records of a payload; raises :class:`InvalidFact` when it has no readable shape."""
    try:
        whole = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        lines = [line for line in payload.splitlines() if line.strip()]
        if len(lines) < 2:
            raise InvalidFact(f"not valid JSON ({error}); {SHAPE}") from None
        entries: list[Entry] = []
        for line in lines:
            try:
                entries.append((_text(line), orjson.loads(line), None))
            except orjson.JSONDecodeError as bad:
                entries.append((_text(line), None, f"not valid JSON ({bad})"))
        return entries
    if isinstance(whole, list):
        return [(orjson.dumps(record).decode(), record, None) for record in whole]
    return [(_text(payload), whole, None)]


def decode(msg: Msg) -> Iterator[Item]:
    """The items of one message, positioned at its stream sequence."""
    meta = msg.metadata
    seq = meta.sequence.stream
    where = f"{msg.subject}@{meta.stream}:{seq}"
    try:
        entries = _entries(msg.data)
    except InvalidFact as error:
        yield Item(seq, reject=Reject(where, error.field, error.reason, _text(msg.data)))
        return
    if not entries:
        yield Item(seq, reject=Reject(where, None, f"no records; {SHAPE}", _text(msg.data)))
        return
    for number, (text, record, not_json) in enumerate(entries, start=1):
        here = f"{where}[{number}]" if len(entries) > 1 else where
        if not_json:
            yield Item(seq, reject=Reject(here, None, not_json, text))
            continue
        try:
            restored = isinstance(record, dict) and record.get("recorded_at") is not None
            yield Item(seq, fact=parse_fact(record), text=_later(text), restored=restored)
        except InvalidFact as error:
            yield Item(seq, reject=Reject(here, error.field, error.reason, text))
