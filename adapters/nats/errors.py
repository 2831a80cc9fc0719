"""Errors raised by the NATS JetStream source.

    RevledgerError                  (ledger.errors) root of everything raised on purpose
    ├── ConfigurationError          (ledger.errors) a stream, consumer or option that is unusable
    └── StreamUnavailable           the NATS server cannot be reached, lacks JetStream, or went away

Every message is one line for a user: what failed, where (URL, stream, consumer), what to do.
"""

from __future__ import annotations

from ledger.errors import RevledgerError


class StreamUnavailable(RevledgerError):
    """The NATS server cannot be reached, has no JetStream, or the connection was lost."""
