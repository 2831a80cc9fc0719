"""revledger's ledger: the immutable, event-sourced record of every revenue-cycle fact."""

from __future__ import annotations

from ledger.application import BatchResult, Ledger, open_ledger
from ledger.codec import fact_to_record, parse_fact
from ledger.errors import RevledgerError
from ledger.events import FACT_TYPES, Fact, fact_id

__all__ = [
    "FACT_TYPES",
    "BatchResult",
    "Fact",
    "Ledger",
    "RevledgerError",
    "fact_id",
    "fact_to_record",
    "open_ledger",
    "parse_fact",
]
