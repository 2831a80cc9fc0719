"""``revledger audit lead|reconcile|sla|definitions|disagreements``: the funnel audit commands.

Parsing only; every report comes from :class:`projections.audit_api.FunnelAudit`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date

from adapters.cli import Context
from adapters.render import FORMATS, render
from projections.periods import KINDS, Calendar, parse_day
from projections.report import Report

EXIT_OK = 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the funnel audit sub-commands under ``audit``."""
    lead = commands.add_parser("lead", help="a lead's full timeline with provenance")
    lead.add_argument("lead_id", metavar="ID")
    _common(lead, span=False)
    lead.set_defaults(handler=_handler(lambda a, args: a.lead(args.lead_id)))
    reconcile = commands.add_parser("reconcile", help="handed off vs accepted, lead by lead")
    _common(reconcile, leads=True)
    reconcile.set_defaults(
        handler=_handler(lambda a, args: a.reconcile(*_span(args), per_lead=args.leads))
    )
    sla = commands.add_parser("sla", help="time to first sales activity and breaches")
    _common(sla)
    sla.add_argument("--period", default="month", choices=KINDS)
    sla.set_defaults(handler=_handler(lambda a, args: a.sla(Calendar(args.period), *_span(args))))
    history = commands.add_parser("definitions", help="each version: in force, approvers, counts")
    _common(history, span=False)
    history.add_argument("--period", default="month", choices=KINDS)
    history.set_defaults(handler=_handler(lambda a, args: a.history(Calendar(args.period))))
    disagree = commands.add_parser("disagreements", help="CRM stages the definition disputes")
    _common(disagree, leads=True)
    disagree.set_defaults(
        handler=_handler(lambda a, args: a.disagreements(*_span(args), per_lead=args.leads))
    )


def _common(parser: argparse.ArgumentParser, *, span: bool = True, leads: bool = False) -> None:
    if span:
        parser.add_argument("--from", dest="start", required=True, metavar="DATE")
        parser.add_argument("--to", dest="end", required=True, metavar="DATE")
    if leads:
        parser.add_argument("--leads", action="store_true", help="list every lead (export)")
    parser.add_argument("--format", default="table", choices=FORMATS)


def _span(args: argparse.Namespace) -> tuple[date, date]:
    return parse_day(args.start, "--from"), parse_day(args.end, "--to")


def _handler(build: Callable[..., Report]) -> Callable[[argparse.Namespace, Context], int]:
    def handle(args: argparse.Namespace, ctx: Context) -> int:
        from projections.audit_api import FunnelAudit  # noqa: PLC0415

        audit = FunnelAudit(ctx.ledger())
        try:
            report = build(audit, args)
        finally:
            audit.close()
        render(report, args.format)
        return EXIT_OK

    return handle
