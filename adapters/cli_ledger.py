"""Ledger commands: init, ingest, export, generate, events, stats, demo."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from adapters import canonical, parse_process
from adapters.pipeline import BATCH_SIZE, LoadSummary
from adapters.render import FORMATS, render
from ledger.codec import dumps, fact_class, fact_to_record
from ledger.errors import ConfigurationError
from ledger.summary import summarise
from projections.report import Report

if TYPE_CHECKING:
    from adapters.cli import Context
    from ledger.application import Ledger
    from ledger.events import Fact

Commands = argparse._SubParsersAction  # noqa: SLF001 - argparse exposes no public name


def register(commands: Commands[argparse.ArgumentParser]) -> None:
    """Add the ledger commands to the CLI."""
    init = commands.add_parser("init", help="create the ledger's tables (safe to repeat)")
    init.set_defaults(handler=cmd_init)

    ingest = commands.add_parser("ingest", help="record canonical JSONL events (docs/events.md)")
    ingest.add_argument("files", nargs="+", metavar="FILE", help="JSONL file(s); .gz ok; - = stdin")
    add_load_options(ingest)
    ingest.add_argument(
        "--parse-process",
        choices=("auto", "always", "never"),
        default="auto",
        help="parse each file in a second process while this one records (auto: files of "
        f"{parse_process.MIN_BYTES >> 20} MiB or more, on two or more cores; never for stdin)",
    )
    ingest.set_defaults(handler=cmd_ingest)

    export = commands.add_parser("export", help="write every event as canonical JSONL")
    export.add_argument("--out", metavar="FILE", help="file to write (.gz ok; default stdout)")
    export.set_defaults(handler=cmd_export)

    generate = commands.add_parser("generate", help="write a seeded, realistic synthetic funnel")
    generate.add_argument("--leads", type=int, required=True, metavar="N")
    generate.add_argument("--seed", type=int, default=7, metavar="S")
    generate.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2024, 11, 1),
        metavar="DATE",
        help="first day of the window (default 2024-11-01)",
    )
    generate.add_argument("--months", type=int, default=24, metavar="M")
    generate.add_argument(
        "--out", required=True, metavar="FILE", help="JSONL file (.gz ok; - = stdout)"
    )
    generate.set_defaults(handler=cmd_generate)

    events = commands.add_parser("events", help="list events, e.g. one lead's timeline")
    events.add_argument("--lead", metavar="ID", help="only this lead (in business-time order)")
    events.add_argument("--subject", metavar="ID", help="only this opportunity/account/campaign")
    events.add_argument(
        "--type",
        dest="types",
        action="append",
        metavar="TYPE",
        help="only this event type (repeatable)",
    )
    events.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (0 = all)")
    events.add_argument("--format", choices=FORMATS, default="table")
    events.set_defaults(handler=cmd_events)

    stats = commands.add_parser("stats", help="what the ledger holds")
    stats.add_argument("--format", choices=FORMATS, default="table")
    stats.set_defaults(handler=cmd_stats)

    demo = commands.add_parser("demo", help="generate a realistic funnel, ingest it, report")
    demo.add_argument("--leads", type=int, default=20_000, metavar="N")
    demo.add_argument("--seed", type=int, default=7, metavar="S")
    demo.set_defaults(handler=cmd_demo)


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """The options every load command shares: rejects file, batch size, rescan, format."""
    parser.add_argument(
        "--rejects",
        metavar="PATH",
        help="where rejected records go (default: ./<first input>.rejects.jsonl)",
    )
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, metavar="N")
    parser.add_argument(
        "--rescan",
        action="store_true",
        help="read inputs from the start even if a checkpoint says they were loaded",
    )
    parser.add_argument("--format", choices=FORMATS, default="table")


def _progress(ctx: Context) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=ctx.stderr,
        transient=True,
        disable=not ctx.stderr.is_terminal,
    )


def cmd_init(args: argparse.Namespace, ctx: Context) -> int:
    """Create the ledger's tables."""
    del args
    ledger = ctx.ledger(create=True)
    ctx.stderr.print(f"ledger ready at {ctx.config.display} ({ledger.position():,} events)")
    return 0


def ingest(  # noqa: PLR0913 - one keyword per CLI option
    ctx: Context,
    files: list[str],
    *,
    rejects: str | None,
    batch_size: int,
    fmt: str,
    rescan: bool = False,
    parallel: bool | None = None,
) -> int:
    """Ingest files with a progress bar, print the summary; the exit code tells of rejects.

    ``parallel``: parse in a second process (None: decide per file, see ``ingest_files``).
    """
    if batch_size < 1:
        raise ConfigurationError("--batch-size must be at least 1")
    ledger = ctx.ledger(create=True)
    first = Path(files[0]).name if files[0] != "-" else "stdin"
    rejects_path = Path(rejects) if rejects else Path.cwd() / f"{first}.rejects.jsonl"
    started = time.perf_counter()
    with _progress(ctx) as bar:
        tasks: dict[str, Any] = {}

        def tick(summary: LoadSummary, done: int, total: int | None) -> None:
            if summary.input not in tasks:
                name = f"ingest {Path(summary.input).name}"
                tasks[summary.input] = bar.add_task(name, total=total, rate="")
            rate = summary.read / max(time.perf_counter() - started, 1e-9)
            bar.update(tasks[summary.input], completed=done, rate=f"{rate:,.0f} events/s")

        summaries = canonical.ingest_files(
            ledger,
            files,
            rejects_path=rejects_path,
            batch_size=batch_size,
            rescan=rescan,
            progress=tick,
            parallel=parallel,
        )
    status = render_load(ctx, summaries, time.perf_counter() - started, rejects_path, fmt)
    if any(s.skipped for s in summaries):
        ctx.stderr.print(
            "skipped lines were loaded by an earlier run (checkpoint); --rescan reads them again"
        )
    return status


def render_load(
    ctx: Context, summaries: list[LoadSummary], elapsed: float, rejects_path: Path, fmt: str
) -> int:
    """Print a load summary (per input and in total); exit code 3 if anything was rejected."""
    report = Report(
        title="Ingest", columns=["input", *LoadSummary.COUNTS], rows=[s.row() for s in summaries]
    )
    if len(summaries) > 1:
        report.rows.append(
            ["total", *(sum(getattr(s, n) for s in summaries) for n in LoadSummary.COUNTS)]
        )
    read = sum(s.read for s in summaries)
    report.notes.append(f"{read:,} events in {elapsed:.1f}s ({read / max(elapsed, 1e-9):,.0f}/s)")
    for summary in summaries:
        for message in summary.first_rejects:
            ctx.stderr.print(
                f"[yellow]rejected[/yellow] {escape(message)}", highlight=False, soft_wrap=True
            )
    rejected = sum(s.rejected for s in summaries)
    if rejected:
        report.notes.append(f"{rejected:,} rejected records with their reasons: {rejects_path}")
    render(report, fmt)
    return 3 if rejected else 0


def cmd_ingest(args: argparse.Namespace, ctx: Context) -> int:
    """Record canonical JSONL files."""
    return ingest(
        ctx,
        args.files,
        rejects=args.rejects,
        batch_size=args.batch_size,
        fmt=args.format,
        rescan=args.rescan,
        parallel={"auto": None, "always": True, "never": False}[args.parse_process],
    )


def cmd_export(args: argparse.Namespace, ctx: Context) -> int:
    """Write the ledger as canonical JSONL."""
    ledger = ctx.ledger()
    total = ledger.position()
    with _progress(ctx) as bar:
        task = bar.add_task("export", total=total, rate="")
        count = canonical.export_facts(
            ledger, args.out, progress=lambda position: bar.update(task, completed=position)
        )
    if args.out not in (None, "-"):
        ctx.stderr.print(f"exported {count:,} events to {args.out}")
    return 0


def cmd_generate(args: argparse.Namespace, ctx: Context) -> int:
    """Write a synthetic funnel."""
    from adapters import synthetic  # noqa: PLC0415 - only these commands need it

    if args.leads < 1:
        raise ConfigurationError("--leads must be at least 1")
    started = time.perf_counter()
    records = synthetic.generate(args.leads, seed=args.seed, start=args.start, months=args.months)
    count = synthetic.write_jsonl(records, args.out)
    elapsed = time.perf_counter() - started
    ctx.stderr.print(
        f"wrote {count:,} events for {args.leads:,} leads to {args.out} in {elapsed:.1f}s"
    )
    return 0


def _matches(fact: Fact, args: argparse.Namespace) -> bool:
    if args.types and fact.type_name not in args.types:
        return False
    state = vars(fact)
    if (
        args.lead
        and state.get("lead_id") != args.lead
        and args.lead not in state.get("lead_ids", ())
    ):
        return False
    return not (
        args.subject
        and args.subject
        not in {state.get("opportunity_id"), state.get("account_id"), state.get("campaign_id")}
    )


def cmd_events(args: argparse.Namespace, ctx: Context) -> int:
    """List events, optionally one subject's, in business-time order."""
    for name in args.types or ():
        fact_class(name)  # refuses an unknown type with the catalogue hint
    ledger = ctx.ledger()
    found = [fact for _, fact in ledger.facts() if _matches(fact, args)]
    if args.lead or args.subject:
        found.sort(key=lambda f: (f.occurred_at, f.recorded_at, f.source, f.source_id))
    if args.limit:
        found = found[: args.limit]
    report = Report(
        title="Events",
        columns=[
            "occurred_at",
            "type",
            "subject",
            "details",
            "source",
            "source_id",
            "actor",
            "recorded_at",
        ],
    )
    for fact in found:
        details = " ".join(
            f"{k}={v}"
            for k, v in fact_to_record(fact).items()
            if k
            not in {
                "type",
                "occurred_at",
                "recorded_at",
                "source",
                "source_id",
                "actor",
                fact.subject_field,
            }
        )
        report.rows.append(
            [
                fact.occurred_at,
                fact.type_name,
                fact.subject,
                details,
                fact.source,
                fact.source_id,
                fact.actor,
                fact.recorded_at,
            ]
        )
    if args.format == "json":
        sys.stdout.write(
            "\n".join(dumps(fact_to_record(f)).decode() for f in found) + ("\n" if found else "")
        )
        return 0
    render(report, args.format)
    return 0


def stats_report(ledger: Ledger) -> Report:
    """The ledger summary as a report."""
    summary = summarise(ledger.facts())
    report = Report(title=f"Ledger: {summary.facts:,} events", columns=["measure", "value"])
    rows = report.rows
    rows.extend(
        [
            ["leads", len(summary.subjects["lead_id"])],
            ["opportunities", len(summary.subjects["opportunity_id"])],
            ["accounts", len(summary.subjects["account_id"])],
            ["campaigns", len(summary.subjects["campaign_id"])],
            ["corrections", summary.corrections],
            ["business time from", summary.first_occurred],
            ["business time to", summary.last_occurred],
            ["recorded from", summary.first_recorded],
            ["recorded to", summary.last_recorded],
        ]
    )
    rows.extend([f"events: {name}", count] for name, count in sorted(summary.by_type.items()))
    rows.extend([f"source: {name}", count] for name, count in sorted(summary.by_source.items()))
    return report


def cmd_stats(args: argparse.Namespace, ctx: Context) -> int:
    """Summarise the ledger."""
    render(stats_report(ctx.ledger()), args.format)
    return 0


def cmd_demo(args: argparse.Namespace, ctx: Context) -> int:
    """Generate a realistic funnel, ingest it, and print what the ledger holds."""
    from adapters import synthetic  # noqa: PLC0415 - only these commands need it

    path = Path(f"funnel-{args.leads}-leads-seed-{args.seed}.jsonl")
    if not path.exists():
        ctx.stderr.print(f"generating {args.leads:,} leads (seed {args.seed}) into {path} ...")
        synthetic.write_jsonl(synthetic.generate(args.leads, seed=args.seed), path)
    status = ingest(ctx, [str(path)], rejects=None, batch_size=BATCH_SIZE, fmt="table")
    ledger = ctx.ledger()
    render(stats_report(ledger))
    print_leadership(ctx, ledger)
    return status


def print_leadership(ctx: Context, ledger: Ledger) -> None:
    """Catch the projections up, then print the leadership page as of the last business day."""
    from projections.api import Reports  # noqa: PLC0415 - only the demo needs them here
    from projections.leadership import leadership  # noqa: PLC0415
    from projections.runner import Projection  # noqa: PLC0415

    projection = Projection(ledger)
    try:
        if projection.position() == 0:
            ctx.stderr.print("building the projections ...")
            projection.rebuild()  # the bulk path: faster than catching up from nothing
        else:
            ctx.stderr.print("catching the projections up ...")
            projection.catch_up()
    finally:
        projection.close()
    last = summarise(ledger.facts()).last_occurred
    reports = Reports(ctx.config)
    try:
        for report in leadership(reports, last.date() if last else date.today()):  # noqa: DTZ011
            render(report)
    finally:
        reports.close()
