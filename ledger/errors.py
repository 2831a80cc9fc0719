"""Errors raised by the ledger.

    RevledgerError                  root of everything revledger raises on purpose
    ├── ConfigurationError          a bad --db URL or setting
    ├── StoreUnavailable            the database cannot be reached or is not a ledger
    ├── InvalidFact                 one input record is not a valid fact (names the field)
    └── CorrectionTargetMissing     a correction names a fact the ledger does not hold

Every message is meant to be shown to a user as one line: what was wrong, where, and what to do.
"""

from __future__ import annotations


class RevledgerError(Exception):
    """Root of every error revledger raises deliberately."""


class ConfigurationError(RevledgerError):
    """A setting (database URL, option) is malformed or unsupported."""


class StoreUnavailable(RevledgerError):
    """The ledger's database cannot be reached, or holds no ledger yet."""


class InvalidFact(RevledgerError):
    """An input record cannot become a fact; ``field`` names the offending field."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        """Keep the field apart from the reason so callers can report both."""
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


class CorrectionTargetMissing(InvalidFact):
    """A retraction or amendment names a (source, source_id) that was never recorded."""
