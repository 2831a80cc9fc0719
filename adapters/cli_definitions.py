"""``revledger definitions``: propose, approve, list, show, diff, evaluate and what-if.

Parsing only: the workflow is :mod:`projections.definitions`, evaluation
:mod:`projections.qualification_runner`, what-if :mod:`projections.audit_api`; a bad file, rule
or approval is a :class:`~ledger.definitions.DefinitionError` (one line, exit 1, nothing written).
"""

from __future__ import annotations

import argparse
import difflib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.cli import Context
from adapters.render import FORMATS, render
from projections.definitions import Catalogue, DefinitionBook
from projections.periods import parse_day
from projections.report import Report

EXIT_OK = 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``definitions`` and its sub-commands to the CLI."""
    parser = commands.add_parser("definitions", help="versioned, co-signed funnel definitions")
    sub = parser.add_subparsers(dest="definitions_command", metavar="ACTION", required=True)
    propose = sub.add_parser("propose", help="record a definition file (TOML or JSON) as proposed")
    propose.add_argument("file", type=Path, metavar="FILE")
    propose.add_argument("--actor", required=True, metavar="NAME", help="who proposes it")
    propose.set_defaults(handler=propose_command)
    approve = sub.add_parser("approve", help="approve a version as its marketing or sales owner")
    approve.add_argument("version", metavar="VERSION")
    approve.add_argument(
        "--as", dest="role", required=True, metavar="ROLE", help="marketing | sales"
    )
    approve.add_argument("--actor", required=True, metavar="NAME", help="the approving owner")
    approve.set_defaults(handler=approve_command)
    listing = sub.add_parser("list", help="every version, its status and approvals")
    listing.add_argument("--format", default="table", choices=FORMATS)
    listing.set_defaults(handler=list_command)
    show = sub.add_parser("show", help="one version as recorded (JSON)")
    show.add_argument("version", metavar="VERSION")
    show.set_defaults(handler=show_command)
    diff = sub.add_parser("diff", help="what changed between two versions")
    diff.add_argument("old", metavar="V1")
    diff.add_argument("new", metavar="V2")
    diff.set_defaults(handler=diff_command)
    evaluate = sub.add_parser("evaluate", help="record qualifications for new lead facts")
    evaluate.add_argument("--follow", action="store_true", help="keep evaluating until stopped")
    evaluate.add_argument("--interval", type=float, default=1.0, metavar="SECONDS")
    evaluate.set_defaults(handler=evaluate_command)
    whatif = sub.add_parser("whatif", help="re-count a period under another version")
    whatif.add_argument("version", metavar="VERSION")
    whatif.add_argument("--from", dest="start", required=True, metavar="DATE")
    whatif.add_argument("--to", dest="end", required=True, metavar="DATE")
    whatif.add_argument("--leads", action="store_true", help="one row per lead")
    whatif.add_argument("--format", default="table", choices=FORMATS)
    whatif.set_defaults(handler=whatif_command)


def propose_command(args: argparse.Namespace, ctx: Context) -> int:
    """Record a proposed definition."""
    definition = DefinitionBook(ctx.ledger()).propose(args.file, args.actor)
    print(  # noqa: T201
        f"proposed version {definition.version} (effective {definition.effective_from}); "
        f"awaiting approval by {definition.owners['marketing']} (marketing) "
        f"and {definition.owners['sales']} (sales)"
    )
    return EXIT_OK


def approve_command(args: argparse.Namespace, ctx: Context) -> int:
    """Record one owner's approval."""
    version = DefinitionBook(ctx.ledger()).approve(args.version, args.role, args.actor)
    catalogue = Catalogue.load(ctx.ledger())
    status = catalogue.status(version.name, datetime.now(UTC))
    print(f"{args.actor} approved version {version.name} as {args.role}; now {status}")  # noqa: T201
    return EXIT_OK


def list_command(args: argparse.Namespace, ctx: Context) -> int:
    """List every version."""
    catalogue = Catalogue.load(ctx.ledger())
    now = datetime.now(UTC)
    rows: list[list[Any]] = []
    for name, version in catalogue.versions.items():
        approvals = ", ".join(f"{a.role}: {a.actor}" for a in version.approvals.values())
        note = version.definition.change_note
        rows.append([name, catalogue.status(name, now), version.definition.effective_from,
                     version.proposed_by, approvals, note])  # fmt: skip
    rows.extend(
        [name, f"invalid: {why}", None, "", "", ""] for name, why in catalogue.invalid.items()
    )
    columns = ["version", "status", "effective_from", "proposed_by", "approvals", "change_note"]
    render(Report("Funnel definitions", columns, rows), args.format)
    return EXIT_OK


def _document(ctx: Context, name: str) -> dict[str, Any]:
    definition = Catalogue.load(ctx.ledger()).get(name).definition
    return {
        "version": definition.version,
        "effective_from": definition.effective_from.isoformat(),
        "change_note": definition.change_note,
        **definition.document,
    }


def show_command(args: argparse.Namespace, ctx: Context) -> int:
    """Print one version as recorded."""
    print(json.dumps(_document(ctx, args.version), indent=2))  # noqa: T201
    return EXIT_OK


def diff_command(args: argparse.Namespace, ctx: Context) -> int:
    """Print a unified diff of two versions."""
    old = json.dumps(_document(ctx, args.old), indent=2).splitlines()
    new = json.dumps(_document(ctx, args.new), indent=2).splitlines()
    for line in difflib.unified_diff(old, new, args.old, args.new, lineterm=""):
        print(line)  # noqa: T201
    return EXIT_OK


def evaluate_command(args: argparse.Namespace, ctx: Context) -> int:
    """Evaluate new lead facts (once, or following the ledger)."""
    from projections.qualification_runner import Evaluator  # noqa: PLC0415

    evaluator = Evaluator(ctx.ledger())
    stop = threading.Event()
    while True:
        summary = evaluator.run(stop=stop)
        print(  # noqa: T201
            f"read {summary.read:,} facts; recorded {summary.recorded:,} qualifications "
            f"({summary.duplicates:,} already recorded); at position {evaluator.position():,}"
        )
        if not args.follow or stop.wait(args.interval):
            return EXIT_OK


def whatif_command(args: argparse.Namespace, ctx: Context) -> int:
    """Re-count a period under another version."""
    from projections.audit_api import FunnelAudit  # noqa: PLC0415

    start, end = parse_day(args.start, "--from"), parse_day(args.end, "--to")
    audit = FunnelAudit(ctx.ledger())
    try:
        report = audit.whatif(args.version, start, end, per_lead=args.leads)
    finally:
        audit.close()
    render(report, args.format)
    return EXIT_OK
