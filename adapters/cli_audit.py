"""The ``audit`` command group: traces numbers back to the facts behind them.

``audit lead|reconcile|sla|definitions`` (the funnel audit) and ``audit deal`` (credit) are
registered by their own modules.
"""

from __future__ import annotations

import argparse

from adapters import cli_audit_credit, cli_audit_funnel


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit`` and its sub-commands to the CLI."""
    audit = commands.add_parser("audit", help="trace a number back to the facts behind it")
    what = audit.add_subparsers(dest="audit_command", metavar="WHAT", required=True)
    cli_audit_funnel.register(what)
    cli_audit_credit.register(what)
