"""Read models rebuilt from the ledger, and the reports over them (docs/metrics.md)."""
