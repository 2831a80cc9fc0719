"""Connecting to NATS, and making sure the stream and the durable consumer exist.

A missing stream is created (file storage, limits retention, capturing exactly the subject), and
so is a missing durable consumer: a pull consumer with explicit acknowledgement that starts at
the first message of the stream, so a new durable loads the stream's whole retained history
(idempotency makes anything already in the ledger a duplicate). An existing consumer is reused;
its ``ack_wait`` and ``max_ack_pending`` are updated when the options ask for other values, and a
durable that follows another subject is refused rather than silently re-pointed.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from adapters.nats.errors import StreamUnavailable
from ledger.errors import ConfigurationError

CONNECT_TIMEOUT = 2  # seconds per attempt
RECONNECT_ATTEMPTS = 2  # a refused first connection fails after about this many seconds
RECONNECT_WAIT = 1  # seconds between attempts (also while riding out a server restart)
MIN_ACK_PENDING = 1000  # the server's default; raised to the batch size when that is larger


class ErrorLog:
    """The nats-py error callback: keeps the last error (instead of nats-py logging it)."""

    def __init__(self) -> None:
        """Nothing seen yet."""
        self.last: BaseException | None = None

    async def remember(self, error: Exception) -> None:
        """Remember ``error`` (nats-py calls this)."""
        self.last = error


@dataclass
class Connection:
    """An open NATS connection, its JetStream context, and the errors the client reported."""

    client: Client
    js: JetStreamContext
    url: str
    errors: ErrorLog

    def lost(self) -> StreamUnavailable:
        """The error to raise when the connection is gone for good."""
        reason = describe(self.errors.last) if self.errors.last else "connection closed"
        return StreamUnavailable(
            f"lost the connection to NATS at {self.url}: {reason}; "
            "restart when the server is back (nothing unacknowledged is lost)"
        )

    async def close(self) -> None:
        """Send what is buffered (acknowledgements) and close."""
        if self.client.is_closed:
            return
        with suppress(nats.errors.Error):  # what is unacknowledged is redelivered: nothing is lost
            await self.client.flush(timeout=5)
        await self.client.close()


def describe(error: BaseException) -> str:
    """One line for a nats-py error (some have no message of their own)."""
    if isinstance(error, nats.js.errors.APIError) and error.description:
        return str(error.description)
    return " ".join(str(error).split()) or type(error).__name__


async def connect(url: str) -> Connection:
    """Connect to ``url``; a server that cannot be reached raises :class:`StreamUnavailable`."""
    errors = ErrorLog()
    try:
        client = await nats.connect(
            url,
            connect_timeout=CONNECT_TIMEOUT,
            max_reconnect_attempts=RECONNECT_ATTEMPTS,
            reconnect_time_wait=RECONNECT_WAIT,
            error_cb=errors.remember,
            name="revledger",
        )
    except (OSError, TimeoutError, nats.errors.Error) as error:
        cause = describe(errors.last or error)
        msg = f"cannot connect to NATS at {url}: {cause}; is nats-server running (with -js)?"
        raise StreamUnavailable(msg) from None
    return Connection(client, client.jetstream(), url, errors)


def default_stream_name(subject: str) -> str:
    """The name of a stream created for ``subject``: ``REVLEDGER_`` and the subject's tokens."""
    tokens = [re.sub(r"[^A-Za-z0-9_-]", "_", t) for t in subject.split(".") if t not in {"*", ">"}]
    return "_".join(["REVLEDGER", *tokens])


async def ensure_stream(js: JetStreamContext, subject: str, stream: str | None) -> str:
    """The stream capturing ``subject`` (or ``stream``, when given); created if missing."""
    try:
        if stream is None:
            try:
                return str(await js.find_stream_name_by_subject(subject))
            except nats.js.errors.NotFoundError:
                stream = default_stream_name(subject)
        try:
            await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            config = StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE)
            await js.add_stream(config)
    except nats.js.errors.ServiceUnavailableError as error:
        raise StreamUnavailable(
            f"JetStream is not available: {describe(error)}; start nats-server with -js"
        ) from None
    except nats.js.errors.APIError as error:
        raise ConfigurationError(
            f"cannot use stream {stream} for subject {subject}: {describe(error)}"
        ) from None
    except (TimeoutError, nats.errors.Error) as error:
        raise StreamUnavailable(
            f"JetStream did not answer: {describe(error)}; is JetStream enabled (nats-server -js)?"
        ) from None
    return stream


def consumer_config(
    durable: str, subject: str, *, ack_wait: float, batch_size: int
) -> ConsumerConfig:
    """A durable pull consumer of ``subject``: explicit acks, from the stream's first message."""
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        filter_subject=subject,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait,
        max_ack_pending=max(MIN_ACK_PENDING, batch_size),
    )


async def ensure_consumer(js: JetStreamContext, stream: str, wanted: ConsumerConfig) -> None:
    """Make sure the durable consumer exists, follows ``wanted``'s subject, and has its settings."""
    durable, subject = str(wanted.durable_name), wanted.filter_subject
    where = f"consumer {durable} on stream {stream}"
    try:
        try:
            current = (await js.consumer_info(stream, durable)).config
        except nats.js.errors.NotFoundError:
            await js.add_consumer(stream, wanted)
            return
        if current.filter_subject != subject:
            msg = (
                f"{where} follows {current.filter_subject!r}, not {subject!r}; "
                "pick another --durable"
            )
            raise ConfigurationError(msg)
        if (current.ack_wait, current.max_ack_pending) != (wanted.ack_wait, wanted.max_ack_pending):
            await js.add_consumer(stream, wanted)  # the server updates these in place
    except nats.js.errors.APIError as error:
        raise ConfigurationError(f"cannot use {where}: {describe(error)}") from None
    except (TimeoutError, nats.errors.Error) as error:
        msg = f"JetStream did not answer for {where}: {describe(error)}"
        raise StreamUnavailable(msg) from None
