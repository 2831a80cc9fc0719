"""CRM export commands: ``load mapping``, ``load salesforce``, ``load hubspot``.

Each checks its configuration and every input (files, headers, mapping) before it opens the
ledger, so a wrong mapping or a missing column is one error line with nothing written; then it
loads through the shared pipeline and prints the summary with
:func:`adapters.cli_ledger.render_load` (exit code 3 when records were rejected).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from adapters.cli_ledger import add_load_options, render_load
from adapters.files import Input, load_inputs
from adapters.pipeline import LoadSummary
from ledger.errors import ConfigurationError

if TYPE_CHECKING:
    from adapters.cli import Context

Commands = argparse._SubParsersAction  # noqa: SLF001 - argparse exposes no public name


def register(commands: Commands[argparse.ArgumentParser]) -> None:
    """Add the ``load`` command group to the CLI."""
    load = commands.add_parser("load", help="load CRM exports (mapping file, Salesforce, HubSpot)")
    sources = load.add_subparsers(dest="source", metavar="SOURCE", required=True)

    mapping = sources.add_parser(
        "mapping", help="CSV/JSONL export described by a TOML mapping file (docs/adapters.md)"
    )
    mapping.add_argument("--mapping", required=True, metavar="FILE", help="the TOML mapping")
    mapping.add_argument("inputs", nargs="+", metavar="INPUT", help="CSV or JSONL file(s)")
    add_load_options(mapping)
    mapping.set_defaults(handler=cmd_mapping)

    salesforce = sources.add_parser(
        "salesforce", help="Salesforce Data Loader / Bulk API CSV export (files or a directory)"
    )
    salesforce.add_argument("inputs", nargs="+", metavar="PATH", help="CSV files or directories")
    salesforce.add_argument(
        "--config",
        metavar="FILE",
        help="TOML overriding the stage, type and channel maps, currency and timezone",
    )
    add_load_options(salesforce)
    salesforce.set_defaults(handler=cmd_salesforce)

    hubspot = sources.add_parser(
        "hubspot", help="HubSpot CRM API v3 contacts and deals (JSON pages or JSONL)"
    )
    hubspot.add_argument("inputs", nargs="+", metavar="FILE", help=".json page or .jsonl file(s)")
    hubspot.add_argument(
        "--config",
        metavar="FILE",
        help="TOML overriding the lifecycle and deal stage maps, deal types and currency",
    )
    add_load_options(hubspot)
    hubspot.set_defaults(handler=cmd_hubspot)


def cmd_mapping(args: argparse.Namespace, ctx: Context) -> int:
    """Load files through a mapping file."""
    from adapters.mapping import mapping_inputs  # noqa: PLC0415 - only this command needs it

    return run_load(ctx, args, mapping_inputs(args.mapping, args.inputs, rescan=args.rescan))


def cmd_salesforce(args: argparse.Namespace, ctx: Context) -> int:
    """Load a Salesforce export."""
    from adapters.salesforce import load_settings, salesforce_inputs  # noqa: PLC0415

    inputs, notes = salesforce_inputs(args.inputs, load_settings(args.config), rescan=args.rescan)
    for note in notes:
        ctx.stderr.print(note, highlight=False, soft_wrap=True)
    return run_load(ctx, args, inputs)


def cmd_hubspot(args: argparse.Namespace, ctx: Context) -> int:
    """Load HubSpot contacts and deals."""
    from adapters.hubspot import hubspot_inputs, load_settings  # noqa: PLC0415

    return run_load(
        ctx, args, hubspot_inputs(args.inputs, load_settings(args.config), rescan=args.rescan)
    )


def run_load(ctx: Context, args: argparse.Namespace, inputs: list[Input]) -> int:
    """Load checked inputs with a progress display; print the summary."""
    if args.batch_size < 1:
        raise ConfigurationError("--batch-size must be at least 1")
    first = Path(args.inputs[0])
    rejects_path = (
        Path(args.rejects) if args.rejects else Path.cwd() / f"{first.name}.rejects.jsonl"
    )
    ledger = ctx.ledger(create=True)
    started = time.perf_counter()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=ctx.stderr,
        transient=True,
        disable=not ctx.stderr.is_terminal,
    )
    with progress as bar:
        tasks: dict[str, Any] = {}

        def tick(summary: LoadSummary) -> None:
            if summary.input not in tasks:
                tasks[summary.input] = bar.add_task(f"load {summary.input}", total=None, rate="")
            rate = summary.read / max(time.perf_counter() - started, 1e-9)
            bar.update(tasks[summary.input], rate=f"{summary.read:,} records, {rate:,.0f}/s")

        summaries = load_inputs(
            ledger, inputs, rejects_path=rejects_path, batch_size=args.batch_size, progress=tick
        )
    status = render_load(ctx, summaries, time.perf_counter() - started, rejects_path, args.format)
    if any(s.skipped for s in summaries):
        ctx.stderr.print(
            "skipped records were loaded by an earlier run (checkpoint); --rescan reads them again"
        )
    return status
