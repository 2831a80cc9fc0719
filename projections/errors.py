"""Errors raised by the projections and their reports.

    RevledgerError                  (ledger.errors) root of everything revledger raises on purpose
    └── ReportError                 a report was asked for with a bad option (date, stage, field...)

Every message is meant to be shown to a user as one line: what was wrong and what to do.
"""

from __future__ import annotations

from ledger.errors import RevledgerError


class ReportError(RevledgerError):
    """A report option is malformed or names something that does not exist."""
