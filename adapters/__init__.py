"""Sources and entry points: the canonical JSONL format, CRM exports, streams, the CLI."""
