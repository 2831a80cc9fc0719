"""Stream commands: ``stream nats`` (consume JetStream into the ledger) and ``stream publish``."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.cli_ledger import render_load
from adapters.render import FORMATS

if TYPE_CHECKING:
    from adapters.cli import Context
    from adapters.nats.consumer import StreamSummary

Commands = argparse._SubParsersAction  # noqa: SLF001 - argparse exposes no public name
DEFAULT_URL = "nats://127.0.0.1:4222"
PROGRESS_EVERY = 5.0  # seconds between progress lines on stderr


def register(commands: Commands[argparse.ArgumentParser]) -> None:
    """Add the stream commands to the CLI."""
    stream = commands.add_parser("stream", help="consume or publish events on a message broker")
    sources = stream.add_subparsers(dest="stream_command", metavar="SOURCE", required=True)

    nats = sources.add_parser(
        "nats",
        help="record events from a NATS JetStream durable consumer (docs/streaming.md)",
        description="Fetch batches from a durable pull consumer, record each batch in one ledger "
        "transaction, and acknowledge the messages only after the commit. Runs until SIGINT or "
        "SIGTERM, or --idle-exit.",
    )
    nats.add_argument("--url", default=DEFAULT_URL, help=f"NATS server (default {DEFAULT_URL})")
    nats.add_argument(
        "--subject", required=True, metavar="SUBJ", help="subject to consume (wildcards allowed)"
    )
    nats.add_argument(
        "--stream",
        metavar="NAME",
        help="JetStream stream (default: the one "
        "capturing SUBJ, else a new one named REVLEDGER_<subject>)",
    )
    nats.add_argument(
        "--durable",
        default="revledger",
        metavar="NAME",
        help="durable consumer name (default revledger)",
    )
    nats.add_argument(
        "--batch-size",
        type=int,
        default=500,
        metavar="N",
        help="messages per fetch and per ledger transaction (default 500)",
    )
    nats.add_argument(
        "--max-wait",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how long one fetch waits when no message is available (default 1)",
    )
    nats.add_argument(
        "--ack-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="redelivery delay of unacknowledged messages (default 30)",
    )
    nats.add_argument(
        "--idle-exit",
        type=float,
        metavar="SECONDS",
        help="stop once no message arrived for this long and none is awaiting "
        "delivery or acknowledgement",
    )
    nats.add_argument(
        "--rejects",
        metavar="PATH",
        help="where rejected records are appended (default ./<stream>.<durable>.rejects.jsonl)",
    )
    nats.add_argument("--format", choices=FORMATS, default="table")
    nats.set_defaults(handler=cmd_nats)

    publish = sources.add_parser(
        "publish", help="publish canonical JSONL lines to NATS JetStream, one per message"
    )
    publish.add_argument("file", metavar="FILE", help="JSONL file (.gz ok; - = stdin)")
    publish.add_argument("--url", default=DEFAULT_URL, help=f"NATS server (default {DEFAULT_URL})")
    publish.add_argument("--subject", required=True, metavar="SUBJ")
    publish.add_argument("--stream", metavar="NAME", help="stream to create if none captures SUBJ")
    publish.set_defaults(handler=cmd_publish)


class RateReporter:
    """The consumer's progress callback: a line with the event rate on stderr every few seconds."""

    def __init__(self, ctx: Context) -> None:
        """Report on ``ctx``'s stderr console."""
        self.stderr = ctx.stderr
        self.at = time.perf_counter()
        self.read = 0

    def __call__(self, summary: StreamSummary) -> None:
        """Print progress if the last line is old enough."""
        now = time.perf_counter()
        if now - self.at < PROGRESS_EVERY:
            return
        rate = (summary.read - self.read) / (now - self.at)
        self.at, self.read = now, summary.read
        self.stderr.print(
            f"{summary.input}: {summary.messages:,} messages, {summary.read:,} events "
            f"({summary.recorded:,} recorded, {summary.duplicates:,} duplicates, "
            f"{summary.rejected:,} rejected), {rate:,.0f} events/s",
            highlight=False,
        )


def cmd_nats(args: argparse.Namespace, ctx: Context) -> int:
    """Consume a JetStream subject into the ledger."""
    from adapters.nats.consumer import Consumer, Settings, run_until_signal  # noqa: PLC0415

    settings = Settings(
        url=args.url,
        subject=args.subject,
        stream=args.stream,
        durable=args.durable,
        batch_size=args.batch_size,
        max_wait=args.max_wait,
        ack_wait=args.ack_wait,
        idle_exit=args.idle_exit,
        rejects=Path(args.rejects) if args.rejects else None,
    )
    settings.check()  # before the ledger is opened (or created)
    started = time.perf_counter()
    consumer = Consumer(ctx.ledger(create=True), settings, progress=RateReporter(ctx))
    summary = asyncio.run(run_until_signal(consumer))
    elapsed = time.perf_counter() - started
    ctx.stderr.print(
        f"{summary.messages:,} messages from {consumer.key} committed and "
        f"acknowledged ({summary.terminated:,} terminated as unreadable)",
        highlight=False,
    )
    return render_load(ctx, [summary], elapsed, consumer.rejects_path, args.format)


def cmd_publish(args: argparse.Namespace, ctx: Context) -> int:
    """Publish a JSONL file's lines as messages."""
    from adapters.nats.publisher import publish_file  # noqa: PLC0415

    started = time.perf_counter()
    summary = asyncio.run(publish_file(args.url, args.subject, args.file, args.stream))
    elapsed = time.perf_counter() - started
    total = summary.published + summary.duplicates
    ctx.stderr.print(
        f"published {summary.published:,} messages to {args.subject} (stream "
        f"{summary.stream}) in {elapsed:.1f}s ({total / max(elapsed, 1e-9):,.0f}/s); "
        f"{summary.duplicates:,} dropped as duplicates by the stream",
        highlight=False,
    )
    return 0
