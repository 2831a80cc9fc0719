"""Publish canonical JSONL lines as JetStream messages, one record per message.

Each message carries a ``Nats-Msg-Id`` header derived from the record's (source, source_id) —
the ledger's own fact id — so the server drops a re-published fact within the stream's
duplicate window (two minutes by default); beyond it, the ledger's idempotency does the same.
A line that is not a JSON object with a source and a source_id is published without the header
(the consumer will reject it with its location). Publishing is pipelined: up to ``WINDOW``
messages await the server's acknowledgement at once, so memory stays constant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import nats.errors
import orjson
from nats.js.api import PubAck

from adapters.canonical import open_input
from adapters.nats.errors import StreamUnavailable
from adapters.nats.jetstream import connect, describe, ensure_stream
from ledger.events import fact_id

WINDOW = 1000  # messages awaiting the server's acknowledgement at once
ACK_TIMEOUT = 30.0  # seconds to wait for a window's acknowledgements


@dataclass
class PublishSummary:
    """What one publish run did."""

    stream: str = ""
    published: int = 0  # stored by the stream
    duplicates: int = 0  # dropped by the stream as already published (same Nats-Msg-Id)


def message_id(line: bytes) -> str | None:
    """The fact id of the record on ``line``, or None when the line names no source/source_id."""
    try:
        record: Any = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    source, source_id = record.get("source"), record.get("source_id")
    if not (isinstance(source, str) and isinstance(source_id, str)):
        return None
    if not (source.strip() and source_id.strip()):
        return None
    return str(fact_id(source.strip(), source_id.strip()))


def _lines(path: str) -> Iterator[bytes]:
    with open_input(path) as (lines, _consumed):
        for line in lines:
            if line.strip():
                yield line.rstrip(b"\r\n")


async def publish_file(
    url: str, subject: str, path: str, stream: str | None = None
) -> PublishSummary:
    """Publish every non-blank line of ``path`` (JSONL, ``.gz`` or ``-``) to ``subject``."""
    connection = await connect(url)
    summary = PublishSummary()
    try:
        summary.stream = await ensure_stream(connection.js, subject, stream)
        pending: list[asyncio.Future[PubAck]] = []
        for line in _lines(path):
            msg_id = message_id(line)
            headers = {"Nats-Msg-Id": msg_id} if msg_id else None
            pending.append(await connection.js.publish_async(subject, line, headers=headers))
            if len(pending) >= WINDOW:
                await _settle(pending, summary)
        await _settle(pending, summary)
    except nats.errors.Error as error:
        raise StreamUnavailable(f"publishing to {subject} failed: {describe(error)}") from None
    finally:
        await connection.close()
    return summary


async def _settle(pending: list[asyncio.Future[PubAck]], summary: PublishSummary) -> None:
    """Wait for the server's acknowledgements of ``pending`` and count them."""
    try:
        acks = await asyncio.wait_for(asyncio.gather(*pending), timeout=ACK_TIMEOUT)
    except TimeoutError:
        msg = f"the stream did not acknowledge {len(pending)} messages within {ACK_TIMEOUT:.0f}s"
        raise StreamUnavailable(msg) from None
    for ack in acks:
        if ack.duplicate:
            summary.duplicates += 1
        else:
            summary.published += 1
    pending.clear()
