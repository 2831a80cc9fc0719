"""Helpers for tests against the local NATS JetStream server: unique names, publishing, cleanup."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import nats
import nats.js.errors
from nats.js.api import ConsumerInfo


@dataclass(frozen=True)
class Names:
    """A stream, its subject and a durable consumer name, unique to one test."""

    url: str
    stream: str
    subject: str
    durable: str


async def _create(names: Names) -> None:
    client = await nats.connect(names.url)
    try:
        await client.jetstream().add_stream(name=names.stream, subjects=[names.subject])
    finally:
        await client.close()


async def _delete(names: Names) -> None:
    client = await nats.connect(names.url)
    try:
        await client.jetstream().delete_stream(names.stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await client.close()


@contextmanager
def unique_stream(url: str, *, create: bool = True) -> Iterator[Names]:
    """Unique names (the stream created unless ``create`` is false), deleted afterwards."""
    tag = uuid.uuid4().hex[:12]
    names = Names(url, f"T_{tag}", f"test.{tag}.events", f"d_{tag}")
    if create:
        asyncio.run(_create(names))
    try:
        yield names
    finally:
        asyncio.run(_delete(names))


async def _publish(names: Names, payloads: Sequence[bytes]) -> None:
    client = await nats.connect(names.url)
    try:
        js = client.jetstream()
        for payload in payloads:
            await js.publish(names.subject, payload)
    finally:
        await client.close()


def publish(names: Names, payloads: Sequence[bytes]) -> None:
    """Publish each payload as one message (no Nats-Msg-Id: repeats are stored again)."""
    asyncio.run(_publish(names, payloads))


async def _info(names: Names) -> ConsumerInfo:
    client = await nats.connect(names.url)
    try:
        return await client.jetstream().consumer_info(names.stream, names.durable)
    finally:
        await client.close()


def consumer_info(names: Names) -> ConsumerInfo:
    """The server's view of the test's durable consumer (pending, awaiting ack, redelivered)."""
    return asyncio.run(_info(names))
