"""Properties of recording: whatever the batching, repetition and order, each fact lands once."""

from __future__ import annotations

import uuid
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.application import open_ledger
from tests.factories import stage

FACTS = [stage(f"L{i % 5}", "mql", f"s{i}", f"2025-01-{1 + i % 28:02d}T00:00:00Z")
         for i in range(30)]


@settings(max_examples=40, deadline=None)
@given(
    deliveries=st.lists(st.integers(0, len(FACTS) - 1), min_size=1, max_size=80),
    batch=st.integers(1, 10),
)
def test_any_delivery_sequence_records_each_distinct_fact_once(
    deliveries: list[int], batch: int, tmp_path_factory: object
) -> None:
    """Recorded + duplicates == delivered, and the ledger holds exactly the distinct facts."""
    path = Path(str(tmp_path_factory.mktemp("p"))) / f"{uuid.uuid4().hex}.db"  # type: ignore[attr-defined]
    ledger = open_ledger(f"sqlite:///{path}")
    recorded = duplicates = 0
    for start in range(0, len(deliveries), batch):
        result = ledger.record([FACTS[i] for i in deliveries[start : start + batch]])
        recorded += len(result.recorded)
        duplicates += len(result.duplicates)
    assert recorded + duplicates == len(deliveries)
    assert recorded == len(set(deliveries))
    assert {f.source_id for _, f in ledger.facts()} == {FACTS[i].source_id for i in deliveries}
    ledger.close()


def test_rejects_after_the_last_fact_are_covered_by_the_checkpoint(sqlite_url: str,
                                                                   tmp_path: Path) -> None:
    """A re-run does not read (and reject) again the bad lines at the end of a loaded file."""
    from adapters.canonical import ingest_files  # noqa: PLC0415

    good = ('{"type":"stage_changed","occurred_at":"2025-01-01T00:00:00Z","source":"t",'
            '"source_id":"s1","actor":"a","lead_id":"L1","to_stage":"mql"}')
    source = tmp_path / "tail.jsonl"
    source.write_text(f"{good}\nnot json\n")
    ledger = open_ledger(sqlite_url)
    rejects = tmp_path / "rejects.jsonl"
    first = ingest_files(ledger, [str(source)], rejects_path=rejects)[0]
    second = ingest_files(ledger, [str(source)], rejects_path=rejects)[0]
    assert (first.read, first.rejected) == (2, 1)
    assert (second.read, second.skipped, second.rejected) == (0, 2, 0)
    assert len(rejects.read_text().splitlines()) == 1
    ledger.close()


def test_a_loaded_batch_is_known_at_one_ledger_time(sqlite_url: str, tmp_path: Path) -> None:
    """Facts committed together share one recorded_at; restored facts keep their own."""
    from adapters.canonical import ingest_files  # noqa: PLC0415

    lines = [
        '{"type":"stage_changed","occurred_at":"2025-01-01T00:00:00Z","source":"t",'
        f'"source_id":"s{i}","actor":"a","lead_id":"L1","to_stage":"mql"}}'
        for i in range(5)
    ]
    lines.append(
        '{"type":"stage_changed","occurred_at":"2025-01-01T00:00:00Z","source":"t",'
        '"source_id":"old","actor":"a","lead_id":"L1","to_stage":"sal",'
        '"recorded_at":"2025-02-01T00:00:00Z"}'
    )
    source = tmp_path / "batch.jsonl"
    source.write_text("\n".join(lines) + "\n")
    ledger = open_ledger(sqlite_url)
    ingest_files(ledger, [str(source)], rejects_path=tmp_path / "r.jsonl", batch_size=100)
    stamps = {f.source_id: f.recorded_at for _, f in ledger.facts()}
    assert len({stamps[f"s{i}"] for i in range(5)}) == 1
    assert stamps["old"].isoformat() == "2025-02-01T00:00:00+00:00"
    ledger.close()
