"""``revledger project``, ``rebuild`` and ``report``: the projection commands over the Python API.

Parsing only: every number comes from :mod:`projections.api`, every table from
:mod:`projections.runner`; bad option values become a :class:`ReportError` (one line, exit 1).
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from typing import Any

from rich.progress import Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from adapters.render import FORMATS, render
from projections.credit.models import DEFAULT_HALF_LIFE, MODEL_NAMES, load_model, named_model
from projections.credit.options import (
    CREDIT_BY,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_TYPES,
    METRICS,
    CreditOptions,
    SourcedRule,
)
from projections.errors import ReportError
from projections.periods import KINDS, Calendar, parse_day, parse_moment, zone
from projections.window import BY_FIELDS, ReportOptions

EXIT_OK = 0
PROJECTIONS = ("funnel",)
CREDIT_REPORTS = ("attribution", "spend", "sourced", "revenue")
SPLIT_CREDIT = ("attribution", "spend")
FUNNEL_REPORTS = "inventory | flow | conversion | velocity | anomalies"


def register(commands: Any) -> None:
    """Add ``project``, ``rebuild`` and ``report`` to the CLI."""
    project = commands.add_parser("project", help="catch the projections up with the ledger")
    project.add_argument(
        "--follow", action="store_true", help="keep following new facts until stopped"
    )
    project.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="polling interval with --follow (default 1)",
    )
    project.set_defaults(handler=project_command)

    rebuild = commands.add_parser(
        "rebuild", help="rebuild projections from scratch, then swap them in"
    )
    rebuild.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"projections ({', '.join(PROJECTIONS)}; default all)",
    )
    rebuild.set_defaults(handler=rebuild_command)

    report = commands.add_parser("report", help="funnel and credit reports")
    report.add_argument(
        "kind", metavar="REPORT", help=f"{FUNNEL_REPORTS} | {' | '.join(CREDIT_REPORTS)}"
    )
    report.add_argument("--period", default="month", help=f"{' | '.join(KINDS)} (default month)")
    report.add_argument("--from", dest="start", metavar="DATE", help="first day (YYYY-MM-DD)")
    report.add_argument(
        "--to", dest="end", metavar="DATE", help="last day (default: the as-of date)"
    )
    report.add_argument(
        "--as-of", metavar="DATE", help="business date to report as of (default today)"
    )
    report.add_argument(
        "--known-at", metavar="TIMESTAMP", help="only facts the ledger held then count"
    )
    report.add_argument(
        "--compare", action="store_true", help="with --known-at: show then, now and the difference"
    )
    report.add_argument("--stage", metavar="S", help="only this stage")
    report.add_argument(
        "--by",
        metavar="FIELD",
        help=f"split by {' | '.join(BY_FIELDS)}; attribution and spend: "
        f"{' | '.join(CREDIT_BY)} (default campaign)",
    )
    report.add_argument("--format", default="table", help="table | csv | json")
    report.add_argument(
        "--tz", default="UTC", metavar="ZONE", help="reporting timezone (default UTC)"
    )
    report.add_argument(
        "--fiscal-start", default="1", metavar="MONTH", help="fiscal year's first month (1-12)"
    )
    report.add_argument(
        "--within", default="30", metavar="DAYS", help="conversion window in days (default 30)"
    )
    report.add_argument("--basis", default="cohort", help="conversion: cohort | period")
    report.add_argument("--matrix", action="store_true", help="flow: the from->to transitions")
    add_credit_arguments(report)
    report.add_argument(
        "--metric",
        default="pipeline",
        help=f"attribution: {' | '.join(METRICS)} (default pipeline)",
    )
    report.add_argument(
        "--target", default="10", metavar="RATIO", help="spend: pipeline-to-spend target (10)"
    )
    report.add_argument(
        "--opp-type",
        default=",".join(DEFAULT_TYPES),
        metavar="TYPES",
        help=f"credit: opportunity types, comma-separated (default {','.join(DEFAULT_TYPES)})",
    )
    report.add_argument(
        "--sales-channels",
        default="outbound",
        metavar="CHANNELS",
        help="sourced: channels that make a deal sales-sourced (default outbound)",
    )
    report.set_defaults(handler=report_command)


def add_credit_arguments(parser: argparse.ArgumentParser) -> None:
    """The attribution model options, shared by ``report`` and ``audit deal``."""
    parser.add_argument(
        "--model", default="linear", help=f"credit: {' | '.join(MODEL_NAMES)} (default linear)"
    )
    parser.add_argument(
        "--lookback",
        default=str(DEFAULT_LOOKBACK_DAYS),
        metavar="DAYS",
        help=f"credit: days of touches before the opportunity opened ({DEFAULT_LOOKBACK_DAYS})",
    )
    parser.add_argument(
        "--half-life",
        default=str(DEFAULT_HALF_LIFE),
        metavar="DAYS",
        help=f"time-decay half-life in days (default {DEFAULT_HALF_LIFE})",
    )
    parser.add_argument(
        "--weights", metavar="FILE", help="custom model weights (.toml or .json; replaces --model)"
    )


def credit_model(args: argparse.Namespace) -> CreditOptions:
    """The model and lookback of the command line (the other credit options keep defaults)."""
    model = (
        load_model(Path(args.weights)) if args.weights else named_model(args.model, args.half_life)
    )
    return CreditOptions(model=model, lookback_days=_integer(args.lookback, "--lookback"))


def _credit_options(args: argparse.Namespace) -> CreditOptions:
    if args.by is not None and args.kind not in SPLIT_CREDIT:
        raise ReportError(f"report {args.kind} cannot be split --by")
    try:
        target = Decimal(args.target)
    except InvalidOperation:
        raise ReportError(f"--target: {args.target!r} is not a number") from None
    return credit_model(args).replace(
        metric=args.metric,
        by=args.by or "campaign",
        target=target,
        opportunity_types=tuple(t.strip() for t in args.opp_type.split(",") if t.strip()),
        sourced=SourcedRule(
            frozenset(c.strip() for c in args.sales_channels.split(",") if c.strip())
        ),
    )


def _integer(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ReportError(f"{option}: {text!r} is not a whole number") from None


def options_from(args: argparse.Namespace) -> ReportOptions:
    """Turn the command line into typed report options (raises ReportError on bad values)."""
    tz = zone(args.tz)
    calendar = Calendar(args.period, tz, _integer(args.fiscal_start, "--fiscal-start"))
    credit = args.kind in CREDIT_REPORTS
    return ReportOptions(
        calendar=calendar,
        start=parse_day(args.start, "--from") if args.start else None,
        end=parse_day(args.end, "--to") if args.end else None,
        as_of=parse_day(args.as_of, "--as-of") if args.as_of else None,
        known_at=parse_moment(args.known_at, "--known-at", tz) if args.known_at else None,
        stage=args.stage,
        by=None if credit else args.by,
        within=_integer(args.within, "--within"),
        basis=args.basis,
        matrix=args.matrix,
        credit=_credit_options(args) if credit else CreditOptions(),
    )


def report_command(args: argparse.Namespace, ctx: Any) -> int:
    """Print one report."""
    from projections.api import Reports  # noqa: PLC0415 - keeps `--help` fast

    if args.format not in FORMATS:
        raise ReportError(f"unknown format {args.format!r}; use one of {', '.join(FORMATS)}")
    options = options_from(args)
    ctx.ledger()  # a clear error when the database holds no ledger
    reports = Reports(ctx.config)
    try:
        result = (
            reports.compare(args.kind, options) if args.compare else reports.run(args.kind, options)
        )
    finally:
        reports.close()
    render(result, args.format)
    return EXIT_OK


class RateColumn(ProgressColumn):
    """Items per second of a progress task."""

    def render(self, task: Task) -> Text:
        """The task's current speed."""
        speed = task.finished_speed or task.speed
        return Text(f"{speed or 0:,.0f} {task.fields.get('unit', 'events')}/s")


def _progress(ctx: Any) -> Progress:
    return Progress(
        *Progress.get_default_columns(),
        TextColumn("{task.completed:,.0f}"),
        RateColumn(),
        console=ctx.stderr,
        transient=False,
    )


def rebuild_command(args: argparse.Namespace, ctx: Any) -> int:
    """Rebuild from scratch with a progress bar; reports keep the old build until the swap."""
    from projections.runner import Projection  # noqa: PLC0415

    unknown = sorted(set(args.names) - set(PROJECTIONS))
    if unknown:
        raise ReportError(
            f"unknown projection {unknown[0]!r}; expected one of {', '.join(PROJECTIONS)}"
        )
    ledger = ctx.ledger()
    projection = Projection(ledger)
    try:
        with _progress(ctx) as bar:
            facts = bar.add_task("facts", total=ledger.position())
            subjects = bar.add_task("subjects", total=None, unit="subjects")
            position = projection.rebuild(
                lambda n: bar.advance(facts, n),
                lambda n: bar.advance(subjects, n),
                lambda step: bar.console.print(f"{step}…"),
            )
    finally:
        projection.close()
    ctx.stderr.print(f"rebuilt funnel up to ledger position {position:,}")
    return EXIT_OK


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def project_command(args: argparse.Namespace, ctx: Any) -> int:
    """Catch up once, or follow the ledger until SIGINT/SIGTERM (stopping between pages)."""
    from projections.runner import Projection  # noqa: PLC0415

    projection = Projection(ctx.ledger())
    try:
        projection.check()  # an outdated projection: its one error line, without a progress bar
        with _stop_on_signals() as stop, _progress(ctx) as bar:
            task = bar.add_task("facts", total=None)
            advance = lambda n: bar.advance(task, n)  # noqa: E731
            done = (
                projection.follow(stop, args.interval, advance)
                if args.follow
                else projection.catch_up(advance, stop)
            )
    finally:
        projection.close()
    ctx.stderr.print(f"projected {done:,} new facts; at ledger position {projection.position():,}")
    return EXIT_OK
