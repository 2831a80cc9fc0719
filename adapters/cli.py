"""The ``revledger`` command: a thin layer that parses options and wires the Python API.

Each command group lives in its own module and registers its sub-commands with
:func:`register` style hooks; every handler takes ``(args, ctx)`` and returns an exit code.
Errors that revledger raises deliberately become one line on stderr and a non-zero exit;
nothing prints a traceback at a user.

Exit codes: 0 success; 1 error (nothing was written by the failing step); 2 bad usage;
3 finished, but some input records were rejected (see the rejects file).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from ledger.errors import RevledgerError
from ledger.storage import StoreConfig, parse_url, resolve_url

if TYPE_CHECKING:
    from ledger.application import Ledger

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3


@dataclass
class Context:
    """What every command needs: the store's URL, a ledger opened on demand, a stderr console."""

    url: str
    stderr: Console = field(default_factory=lambda: Console(stderr=True))
    _ledger: Ledger | None = None

    @property
    def config(self) -> StoreConfig:
        """The parsed database URL."""
        return parse_url(self.url)

    def ledger(self, *, create: bool = False) -> Ledger:
        """Open the ledger (``create`` makes its tables if missing)."""
        from ledger.application import Ledger  # noqa: PLC0415 - keeps `--help` fast

        if self._ledger is None:
            self._ledger = Ledger(self.config, create=create)
        return self._ledger

    def close(self) -> None:
        """Release the database connections."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None


Handler = Callable[[argparse.Namespace, Context], int]


def build_parser() -> argparse.ArgumentParser:
    """The full command-line grammar."""
    from adapters import (  # noqa: PLC0415
        cli_audit,
        cli_definitions,
        cli_ledger,
        cli_reports,
        cli_sources,
        cli_stream,
    )

    parser = argparse.ArgumentParser(
        prog="revledger",
        description=(
            "An event-sourced revenue ledger: record every funnel fact, rebuild every number."
        ),
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="sqlite:///file.db or postgresql://user@host/db "
        "(default: $REVLEDGER_DB, else sqlite:///revledger.db)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    cli_ledger.register(commands)
    cli_sources.register(commands)
    cli_stream.register(commands)
    cli_reports.register(commands)
    cli_definitions.register(commands)
    cli_audit.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = Context(url=resolve_url(args.db))
    handler: Handler = args.handler
    try:
        return handler(args, ctx)
    except RevledgerError as error:
        ctx.stderr.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        ctx.stderr.print("interrupted; every completed batch is committed, re-run to resume")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
