"""``revledger audit deal ID``: one opportunity's credit, traced to its touches and corrections.

Parsing and rendering only; the audit itself is :func:`projections.credit.audit.audit_deal`.
"""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

from adapters.cli_reports import add_credit_arguments, credit_model
from adapters.render import FORMATS, render
from ledger.codec import dumps
from projections.credit.options import CREDIT_BY, METRICS
from projections.errors import ReportError
from projections.periods import Calendar, parse_day, parse_moment, zone
from projections.report import Report
from projections.window import ReportOptions, Window

EXIT_OK = 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit deal``."""
    deal = commands.add_parser(
        "deal", help="an opportunity's credit: touches, models side by side, sourced, corrections"
    )
    deal.add_argument("opportunity_id", metavar="ID", help="the opportunity id")
    add_credit_arguments(deal)
    deal.add_argument(
        "--metric", default="pipeline", help=f"{' | '.join(METRICS)} (default pipeline)"
    )
    deal.add_argument(
        "--by", default="campaign", help=f"corrections: {' | '.join(CREDIT_BY)} (default campaign)"
    )
    deal.add_argument("--as-of", metavar="DATE", help="business date (default today)")
    deal.add_argument("--known-at", metavar="TIMESTAMP", help="only facts the ledger held then")
    deal.add_argument("--tz", default="UTC", metavar="ZONE", help="reporting timezone (UTC)")
    deal.add_argument("--format", default="table", help="table | csv | json")
    deal.set_defaults(handler=audit_deal_command)


def _write(sections: list[Report], fmt: str, opportunity_id: str) -> None:
    if fmt == "json":
        doc = {
            "opportunity_id": opportunity_id,
            "sections": [
                {"title": s.title, "rows": s.records(), "notes": s.notes} for s in sections
            ],
        }
        sys.stdout.write(dumps(doc).decode() + "\n")
    elif fmt == "csv":
        for n, section in enumerate(sections):
            if n:
                sys.stdout.write("\n")
            csv.writer(sys.stdout, lineterminator="\n").writerow([f"# {section.title}"])
            render(section, "csv")
    else:
        for section in sections:
            render(section, "table")


def audit_deal_command(args: argparse.Namespace, ctx: Any) -> int:
    """Print the audit of one opportunity."""
    from projections.credit.audit import audit_deal  # noqa: PLC0415 - keeps `--help` fast
    from projections.reading import Reader  # noqa: PLC0415

    if args.format not in FORMATS:
        raise ReportError(f"unknown format {args.format!r}; use one of {', '.join(FORMATS)}")
    tz = zone(args.tz)
    options = ReportOptions(
        calendar=Calendar("month", tz),
        as_of=parse_day(args.as_of, "--as-of") if args.as_of else None,
        known_at=parse_moment(args.known_at, "--known-at", tz) if args.known_at else None,
        credit=credit_model(args).replace(metric=args.metric, by=args.by),
    )
    ctx.ledger()  # a clear error when the database holds no ledger
    reader = Reader(ctx.config)
    try:
        sections = audit_deal(reader, Window.resolve(options), args.opportunity_id)
    finally:
        reader.close()
    _write(sections, args.format, args.opportunity_id)
    return EXIT_OK
