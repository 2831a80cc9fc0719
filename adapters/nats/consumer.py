"""The JetStream consumer: fetch a batch, record it in one transaction, then acknowledge it.

Each loop fetches up to ``batch_size`` messages from a durable pull consumer, decodes them into
pipeline items (:mod:`adapters.nats.messages`), and hands them to the shared load pipeline
(:mod:`adapters.pipeline`): the batch's facts and the checkpoint ``nats:<stream>:<durable>``
(the highest stream sequence in the batch) are written in ONE ledger transaction, and only after
that commit are the messages acknowledged. So:

- a crash before the commit leaves nothing recorded and nothing acknowledged: the server
  redelivers the whole batch after ``ack_wait``;
- a crash between the commit and the acknowledgements also redelivers, and because facts are
  idempotent by (source, source_id) the redelivered facts are counted as duplicates;
- the checkpoint is informational (how far the stream is loaded); nothing is skipped because of
  it, since redelivery below it is normal (another instance of the durable, a recreated stream).

A message whose records are all rejected is terminated (``TERM``: never redelivered, visible in
the server's advisories) once its rejects are written; any other message is acknowledged.

The ledger is synchronous: each commit runs in a worker thread (``asyncio.to_thread``) so the
event loop keeps answering the server's pings while it waits. One batch is in flight at a time.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from adapters.nats.errors import StreamUnavailable
from adapters.nats.jetstream import (
    Connection,
    connect,
    consumer_config,
    describe,
    ensure_consumer,
    ensure_stream,
)
from adapters.nats.messages import decode
from adapters.pipeline import Item, Loader, LoadSummary, RejectsFile
from ledger.application import Ledger
from ledger.errors import ConfigurationError


@dataclass(frozen=True)
class Settings:
    """What to consume, and how."""

    url: str
    subject: str
    stream: str | None = None  # default: the stream capturing the subject, else a new one
    durable: str = "revledger"
    batch_size: int = 500  # messages per fetch, and so per ledger transaction
    max_wait: float = 1.0  # seconds one fetch waits when no message is available
    ack_wait: float = 30.0  # seconds the server waits for an acknowledgement before redelivery
    idle_exit: float | None = None  # stop once nothing arrived for this long and nothing is due
    rejects: Path | None = None  # default: ./<stream>.<durable>.rejects.jsonl

    def check(self) -> None:
        """Refuse option values that cannot work."""
        if self.batch_size < 1:
            raise ConfigurationError("--batch-size must be at least 1")
        for name in ("max_wait", "ack_wait", "idle_exit"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigurationError(f"--{name.replace('_', '-')} must be more than 0 seconds")


@dataclass
class StreamSummary(LoadSummary):
    """A load summary, plus the messages behind it."""

    messages: int = 0  # committed and acknowledged (or terminated)
    terminated: int = 0  # messages holding no valid record


@dataclass
class Batch:
    """One fetch: its messages, and their items in stream order."""

    acked: list[Msg] = field(default_factory=list)  # hold at least one fact
    dead: list[Msg] = field(default_factory=list)  # hold only rejects: terminated
    facts: list[Item] = field(default_factory=list)
    rejected: list[Item] = field(default_factory=list)

    @classmethod
    def of(cls, messages: list[Msg]) -> Batch:
        """Decode ``messages`` (sorted by stream sequence, so the checkpoint is the highest)."""
        batch = cls()
        for msg in sorted(messages, key=lambda m: m.metadata.sequence.stream):
            items = list(decode(msg))
            facts = [item for item in items if item.fact is not None]
            batch.facts.extend(facts)
            batch.rejected.extend(item for item in items if item.reject is not None)
            (batch.acked if facts else batch.dead).append(msg)
        return batch


Progress = Callable[[StreamSummary], None]


class Consumer:
    """A durable JetStream pull consumer feeding the ledger (see the module docstring)."""

    def __init__(
        self, ledger: Ledger, settings: Settings, progress: Progress | None = None
    ) -> None:
        """Consume for ``ledger`` as ``settings`` say; ``progress`` is called after each batch."""
        settings.check()
        self.ledger = ledger
        self.settings = settings
        self.progress = progress
        self.stream = settings.stream or ""
        self.summary = StreamSummary(settings.subject)

    @property
    def key(self) -> str:
        """The checkpoint key: ``nats:<stream>:<durable>``."""
        return f"nats:{self.stream}:{self.settings.durable}"

    @property
    def rejects_path(self) -> Path:
        """Where rejected records are appended."""
        return self.settings.rejects or Path(f"{self.stream}.{self.settings.durable}.rejects.jsonl")

    async def run(self, stop: asyncio.Event | None = None) -> StreamSummary:
        """Consume until ``stop`` is set or, with ``idle_exit``, until the stream is drained."""
        settings = self.settings
        connection = await connect(settings.url)
        try:
            self.stream = await ensure_stream(connection.js, settings.subject, settings.stream)
            wanted = consumer_config(
                settings.durable,
                settings.subject,
                ack_wait=settings.ack_wait,
                batch_size=settings.batch_size,
            )
            await ensure_consumer(connection.js, self.stream, wanted)
            self.summary.input = f"{settings.subject}@{self.stream}"
            subscription = await connection.js.pull_subscribe_bind(
                durable=settings.durable, stream=self.stream
            )
            await self._consume(connection, subscription, stop or asyncio.Event())
        finally:
            await connection.close()
        return self.summary

    async def _consume(
        self,
        connection: Connection,
        subscription: JetStreamContext.PullSubscription,
        stop: asyncio.Event,
    ) -> None:
        loop = asyncio.get_running_loop()
        idle_exit = self.settings.idle_exit
        last_message = loop.time()
        while not stop.is_set():
            messages = await self._fetch(connection, subscription, stop)
            if messages:
                batch = Batch.of(messages)
                await asyncio.to_thread(self.record, batch)
                await self.acknowledge(batch)
                last_message = loop.time()
                if self.progress:
                    self.progress(self.summary)
            elif (
                idle_exit is not None
                and loop.time() - last_message >= idle_exit
                and await self._drained(connection, subscription)
            ):
                return

    async def _fetch(
        self,
        connection: Connection,
        subscription: JetStreamContext.PullSubscription,
        stop: asyncio.Event,
    ) -> list[Msg]:
        """The next messages, or none after ``max_wait`` (or as soon as ``stop`` is set)."""
        fetch = asyncio.ensure_future(
            subscription.fetch(self.settings.batch_size, timeout=self.settings.max_wait)
        )
        halt = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({fetch, halt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (fetch, halt):
                task.cancel()
            await asyncio.gather(fetch, halt, return_exceptions=True)
        if fetch.cancelled():
            return []  # stopping: anything delivered meanwhile is redelivered after ack_wait
        try:
            return fetch.result()
        except TimeoutError:  # nats-py raises both its own subclass and the builtin
            if connection.client.is_closed:
                raise connection.lost() from None
            return []
        except nats.errors.Error as error:
            if connection.client.is_closed:
                raise connection.lost() from None
            msg = f"cannot fetch from {self.key}: {describe(error)}"
            raise StreamUnavailable(msg) from None

    def record(self, batch: Batch) -> None:
        """Write the batch's rejects, then record its facts and checkpoint in one transaction.

        ``Loader.load`` without a checkpoint key counts and writes the rejected records; the facts
        go through ``Loader.flush`` with the checkpoint (the batch's highest stream sequence,
        rejects included), because a keyed ``load`` would skip messages at or below the
        checkpoint, which a broker may legitimately redeliver. The rejects reach the rejects file
        before any message is acknowledged.
        """
        items = batch.facts + batch.rejected
        rejects = RejectsFile(self.rejects_path)
        loader = Loader(self.ledger, rejects, batch_size=len(items))
        try:
            loader.load(batch.rejected, self.summary, None)
            self.summary.read += len(batch.facts)
            last = max(item.position for item in items)
            loader.flush(batch.facts, self.summary, (self.key, last))
        finally:
            rejects.close(resumed=True)

    async def acknowledge(self, batch: Batch) -> None:
        """Acknowledge the committed messages; terminate those that held only rejects."""
        for msg in batch.acked:
            await msg.ack()
        for msg in batch.dead:
            await msg.term()
        self.summary.messages += len(batch.acked) + len(batch.dead)
        self.summary.terminated += len(batch.dead)

    async def _drained(
        self, connection: Connection, subscription: JetStreamContext.PullSubscription
    ) -> bool:
        """Whether nothing is left: no message undelivered, none delivered but unacknowledged."""
        try:
            await connection.client.flush(timeout=5)  # our acknowledgements reach the server first
            info = await subscription.consumer_info()
        except (TimeoutError, nats.errors.Error) as error:
            if connection.client.is_closed:
                raise connection.lost() from None
            msg = f"cannot read the state of {self.key}: {describe(error)}"
            raise StreamUnavailable(msg) from None
        return not info.num_pending and not info.num_ack_pending


async def run_until_signal(consumer: Consumer) -> StreamSummary:
    """Run ``consumer`` until SIGINT or SIGTERM (or its idle exit); the batch in flight finishes."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        return await consumer.run(stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
