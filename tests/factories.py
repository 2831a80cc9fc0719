"""Small builders for canonical records and facts, shared by the tests."""

from __future__ import annotations

from typing import Any

from ledger.codec import parse_fact
from ledger.events import Fact


def record(type_: str, source_id: str, occurred_at: str = "2025-03-05T14:22:01Z",
           source: str = "test", **fields: Any) -> dict[str, Any]:
    """A canonical record with a default envelope."""
    return {"type": type_, "occurred_at": occurred_at, "source": source,
            "source_id": source_id, "actor": "tester", **fields}


def fact(type_: str, source_id: str, occurred_at: str = "2025-03-05T14:22:01Z",
         source: str = "test", **fields: Any) -> Fact:
    """A fact built through the canonical parser."""
    return parse_fact(record(type_, source_id, occurred_at, source, **fields))


def stage(lead: str, to: str, source_id: str, occurred_at: str, frm: str | None = None) -> Fact:
    """A stage_changed fact."""
    extra = {"from_stage": frm} if frm else {}
    return fact("stage_changed", source_id, occurred_at, lead_id=lead, to_stage=to, **extra)


def project_funnel(
    url: str, leads: int, *, seed: int, months: int, page: int | None = None
) -> None:
    """Record a synthetic funnel of ``leads`` leads in the ledger at ``url`` and project it."""
    from adapters.synthetic import generate  # noqa: PLC0415
    from ledger.application import open_ledger  # noqa: PLC0415
    from projections.runner import Projection  # noqa: PLC0415

    ledger = open_ledger(url)
    ledger.record([parse_fact(r) for r in generate(leads, seed=seed, months=months)])
    projection = Projection(ledger) if page is None else Projection(ledger, page=page)
    projection.catch_up()
    projection.close()
    ledger.close()


def restore_fact_bytes_layout(conn: Any, table: str) -> None:
    """Make ``rl_fact`` (``table``, quoted) as revledger built it before ``rl_fact.position``.

    Keyed by the fact id, with a copy of each fact's stored bytes instead of its position.
    """
    conn.exec_driver_sql(f"DROP TABLE {table}")
    conn.exec_driver_sql(
        f"CREATE TABLE {table} (fact_id VARCHAR(32) PRIMARY KEY, root_id VARCHAR(32) NOT NULL, "
        "recorded_us BIGINT NOT NULL, topic VARCHAR NOT NULL, state BYTEA)"
    )
