"""Salesforce exports (Data Loader / Bulk API CSV) as ledger facts; see docs/adapters.md.

- :mod:`.config`: default stage, type and channel maps, and the ``--config`` TOML over them;
- :mod:`.export`: recognising the files of an export and their load order;
- :mod:`.leads`, :mod:`.opportunities`, :mod:`.campaigns`: one object's rows as facts.

Ids are prefixed ``sf:`` (``sf:00Q5g000004XyZaEAK``); each fact's ``source_id`` is the Salesforce
Id of the row that records it (suffixed when one row gives several facts), so overlapping
exports record each fact once.
"""

from __future__ import annotations

from adapters.salesforce.config import Settings, load_settings
from adapters.salesforce.export import salesforce_inputs

__all__ = ["Settings", "load_settings", "salesforce_inputs"]
