"""The rebuild's bulk path: whatever it keeps in memory, it writes what catch-up writes.

A rebuild derives subjects from the facts it holds in memory and, when a fact about a subject it
has already derived turns up later (or a correction of a family it has let go of), re-derives that
subject from the shadow tables. A tiny memory budget forces those paths on every history, so the
rebuilt tables are compared with catch-up's for generated histories with late facts, retractions,
amendments, and amendments of amendments that move a fact to another lead.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import open_ledger, parse_fact
from ledger.storage import parse_url
from projections.runner import Projection
from projections.schema import DERIVED, tables

START = datetime(2025, 1, 1, tzinfo=UTC)
STAGES = ["inquiry", "mql", "sal", "sql", "won", "lost"]
BUILT = ("fact", "family", *DERIVED)
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def day(n: int) -> str:
    return stamp(START + timedelta(days=n))


@st.composite
def histories(draw: Any) -> list[dict[str, Any]]:
    """Lead facts (funnel and credit), an opportunity, then corrections, some of corrections."""
    records: list[dict[str, Any]] = []
    for lead in range(draw(st.integers(1, 4))):
        records.append({"type": "lead_captured", "lead_id": f"L{lead}", "segment": "smb"})
        records.extend(
            {
                "type": "stage_changed",
                "lead_id": f"L{lead}",
                "to_stage": draw(st.sampled_from(STAGES)),
            }
            for _ in range(draw(st.integers(0, 4)))
        )
        records.extend(
            {"type": "touch_recorded", "lead_id": f"L{lead}", "channel": "web", "touch_type": "v"}
            for _ in range(draw(st.integers(0, 2)))
        )
    if draw(st.booleans()):
        records.append(
            {
                "type": "opportunity_opened",
                "opportunity_id": "O1",
                "account_id": "A1",
                "amount": "10.00",
                "currency": "USD",
                "opportunity_type": "new",
                "stage": "s",
            }
        )
    records = draw(st.permutations(records))  # a lead's facts need not be recorded together
    for n, record in enumerate(records):
        record.update(
            source="gen",
            source_id=f"f{n}",
            actor="gen",
            occurred_at=day(draw(st.integers(0, 90))),
            recorded_at=day(n // 3),
        )
    moves = [r for r in records if r["type"] == "stage_changed"]
    fixes: list[dict[str, Any]] = []
    for target in draw(st.lists(st.sampled_from(moves), unique_by=id, max_size=4)) if moves else []:
        fix = {
            "source": "fix",
            "source_id": f"c{len(fixes)}",
            "actor": "ops",
            "occurred_at": day(100),
            "target_source": "gen",
            "target_source_id": target["source_id"],
            "reason": "test",
            "recorded_at": day(len(records) // 3 + draw(st.integers(0, 5))),
        }
        change = draw(st.sampled_from(["retract", "stage", "move"]))
        if change == "retract":
            fixes.append({"type": "fact_retracted", **fix})
            continue
        stage = draw(st.sampled_from(STAGES))
        fixes.append({"type": "fact_amended", "changes": {"to_stage": stage}, **fix})
        if change == "move":  # amend the amendment: the stage change moves to another lead
            lead = f"L{draw(st.integers(0, 5))}"
            fixes.append(
                {
                    **fix,
                    "type": "fact_amended",
                    "source_id": f"c{len(fixes)}",
                    "target_source": "fix",
                    "target_source_id": fix["source_id"],
                    "changes": {"changes": {"to_stage": stage, "lead_id": lead}},
                }
            )
    if fixes and draw(st.booleans()):  # undo one correction
        undone = draw(st.sampled_from(fixes))
        fixes.append(
            {
                **undone,
                "type": "fact_retracted",
                "source_id": f"c{len(fixes)}",
                "target_source": "fix",
                "target_source_id": undone["source_id"],
            }
        )
        fixes[-1].pop("changes", None)
    return records + fixes


def record(url: str, records: list[dict[str, Any]], batch: int) -> None:
    ledger = open_ledger(url)
    for start in range(0, len(records), batch):
        ledger.record([parse_fact(r) for r in records[start : start + batch]])
    ledger.close()


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    config = parse_url(url)
    live = tables(config.schema)
    engine = sa.create_engine(config.sqlalchemy_url)
    with engine.connect() as conn:
        out = {n: sorted(map(tuple, conn.execute(sa.select(live[n]))), key=repr) for n in BUILT}
    engine.dispose()
    return out


def project(url: str, *, rebuild: bool = False, budget: int = 50_000) -> list[int]:
    """Catch up (three facts a page) or rebuild; returns the subjects progress reported."""
    ledger = open_ledger(url)
    projection = Projection(ledger, page=3, budget=budget)
    derived: list[int] = []
    projection.rebuild(subjects=derived.append) if rebuild else projection.catch_up()
    projection.close()
    ledger.close()
    return derived


@PROPERTY
@given(histories(), st.integers(1, 6), st.sampled_from([1, 2, 3, 8, 50_000]))
def test_rebuild_with_any_memory_budget_equals_catch_up(records, batch, budget):
    """Tiny budgets derive subjects early and re-derive the spoiled ones; the tables agree."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp, 'a.db')}"
        record(url, records, batch)
        project(url)
        incremental = dump(url)
        project(url, rebuild=True, budget=budget)
        assert dump(url) == incremental


def moved_history() -> list[dict[str, Any]]:
    """L1's stage change moves to L2 (an amendment of an amendment) long after L1 was seen."""
    base = {"source": "gen", "actor": "a"}
    records = [
        {"type": "lead_captured", "lead_id": "L1", "source_id": "cap1"},
        {"type": "stage_changed", "lead_id": "L1", "to_stage": "mql", "source_id": "m1"},
        {"type": "lead_captured", "lead_id": "L2", "source_id": "cap2"},
        *(
            {
                "type": "touch_recorded",
                "lead_id": f"F{n}",
                "channel": "web",
                "touch_type": "v",
                "source_id": f"t{n}",
            }
            for n in range(6)
        ),
        {
            "type": "fact_amended",
            "source": "fix",
            "source_id": "a1",
            "target_source": "gen",
            "target_source_id": "m1",
            "reason": "r",
            "changes": {"to_stage": "sal"},
        },
        *(
            {"type": "stage_changed", "lead_id": f"F{n}", "to_stage": "mql", "source_id": f"s{n}"}
            for n in range(6)
        ),
        {
            "type": "fact_amended",
            "source": "fix",
            "source_id": "a2",
            "target_source": "fix",
            "target_source_id": "a1",
            "reason": "r",
            "changes": {"changes": {"to_stage": "sal", "lead_id": "L2"}},
        },
        {"type": "stage_changed", "lead_id": "L1", "to_stage": "sql", "source_id": "late"},
    ]
    out = []
    for n, r in enumerate(records):
        out.append({**base, "occurred_at": day(n), "recorded_at": day(n), **r})
    return out


def test_spoiled_subjects_and_moved_facts_on_both_backends(db_url):
    """Late facts and a correction of a family let go of give catch-up's tables, on each backend."""
    record(db_url, moved_history(), 2)
    project(db_url)
    incremental = dump(db_url)
    assert any(row[0] == "L2" for row in incremental["stay"] if row[2] == "sal")
    for budget in (1, 4, 50_000):
        project(db_url, rebuild=True, budget=budget)
        assert dump(db_url) == incremental


def test_false_positives_of_the_derived_filter_only_cost_time(db_url, monkeypatch):
    """A derived-subjects filter that answers yes to everything costs time, not correctness.

    Every subject is spoiled and derived from the shadow tables; the tables are catch-up's.
    """
    from projections import build_scan  # noqa: PLC0415

    class Everything:
        def __init__(self, *_: Any) -> None:
            pass

        def __contains__(self, _: object) -> bool:
            return True

        def add(self, _: object) -> None:
            pass

    record(db_url, moved_history(), 3)
    project(db_url)
    incremental = dump(db_url)
    monkeypatch.setattr(build_scan, "Bloom", Everything)
    for budget in (1, 50_000):
        project(db_url, rebuild=True, budget=budget)
        assert dump(db_url) == incremental


def test_rebuild_reports_every_subject_and_rebuilds_the_indexes(db_url):
    """Progress counts each subject once (nothing spoiled), and the live tables are indexed."""
    record(db_url, moved_history(), 50)
    subjects = {(r.get("lead_id") or "") for r in moved_history()} - {""}
    assert sum(project(db_url, rebuild=True)) == len(subjects)
    config = parse_url(db_url)
    live = tables(config.schema)
    engine = sa.create_engine(config.sqlalchemy_url)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for name in BUILT:
            indexes = inspector.get_indexes(live[name].name, schema=config.schema)
            assert len(indexes) == len(live[name].indexes), name
    engine.dispose()


def test_a_postgresql_rebuild_leaves_its_tables_vacuumed(pg_url):
    """Statistics, and a visibility map for index-only scans, on every table it loaded."""
    record(pg_url, moved_history(), 50)
    project(pg_url, rebuild=True)
    config = parse_url(pg_url)
    names = [table.name for table in tables(config.schema).by_name.values()]
    engine = sa.create_engine(config.sqlalchemy_url)
    with engine.connect() as conn:
        visible = dict(
            conn.execute(
                sa.text(
                    "SELECT c.relname, c.relallvisible FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = :schema AND c.relname = ANY(:names)"
                ),
                {"schema": config.schema, "names": names},
            ).all()
        )
    engine.dispose()
    assert visible.keys() == set(names)
    loaded = ("rl_fact", "rl_stay", "rl_touch", "rl_roll_stay")
    assert all(visible[name] > 0 for name in loaded), visible


def test_the_scan_forgets_every_fact_it_let_go_of():
    """After the scan, no fact stays in memory, whatever the budget (no leak in the accounting)."""
    from projections.build_bulk import Bulk  # noqa: PLC0415
    from projections.build_scan import Scan  # noqa: PLC0415
    from projections.store import MAPPER, Stored  # noqa: PLC0415

    facts = [parse_fact(r) for r in moved_history()]
    page = []
    for n, fact in enumerate(facts, 1):
        stored = MAPPER.to_stored_event(fact)
        page.append(Stored(n, fact, stored.topic, stored.state))
    for budget in range(1, len(facts) + 2):
        out = Bulk(tables(None, shadow=True))
        scan = Scan(out, budget, facts=len(facts))
        for fact in page:
            scan.add([fact])
            assert scan.count <= max(budget, 1)
        scan.finish()
        assert (scan.count, scan.by_id, scan.held) == (0, {}, {})
        # a correction whose family was let go of waits for the shadow tables, every other
        # fact has its row
        assert len(out.rows["fact"]) + len(scan.pending) == len(facts)
        assert {p.fact.id.hex for p in scan.pending}.isdisjoint(r[0] for r in out.rows["fact"])
        subjects = {(kind, subject) for _, kind, subject in out.rows["family"]}
        assert scan.spoiled <= subjects  # left for the shadow tables; every other one derived:
        assert all(key in scan.derived for key in subjects - scan.spoiled)
        assert not scan.spoiled or budget < len(facts)  # an ample budget spoils nothing


def test_bulk_writes_every_row_whatever_the_batching(db_url, monkeypatch):
    """Multi-row INSERTs (SQLite) or binary COPY (PostgreSQL): rows come back as given."""
    import projections.build_bulk as bulk  # noqa: PLC0415
    from projections.build_bulk import Bulk, create_bare  # noqa: PLC0415

    monkeypatch.setattr(bulk, "VARIABLES", 18)  # three fact rows per SQLite statement
    config = parse_url(db_url)
    if config.schema:
        engine = sa.create_engine(config.sqlalchemy_url)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {config.schema}")
        engine.dispose()
    shadow = tables(config.schema, shadow=True)
    facts = [(f"{n:032x}", f"{n % 3:032x}", n, n, "t", 1000 + n) for n in range(11)]
    stays = [
        (f"L{n}", n, "mql", n, 2**62, None, "sal", "forward", "", n % 2 == 0, n, 2**62)
        for n in range(7)
    ]
    engine = sa.create_engine(config.sqlalchemy_url)
    with engine.begin() as conn:
        create_bare(conn, shadow)
        out = Bulk(shadow, conn)
        out.rows["fact"].extend(facts)
        out.rows["stay"].extend(stays)
        partial = out.take(everything=False)
        if config.backend == "sqlite":  # whole statements only; the rest waits
            assert len(partial["fact"]) == 9
            assert len(out.rows["fact"]) == 2
        out.write(conn, partial)
        out.write(conn)
        assert len(out) == 0
        got = {
            name: sorted(tuple(row) for row in conn.execute(sa.select(shadow[name])))
            for name in ("fact", "stay")
        }
    engine.dispose()
    assert got == {"fact": sorted(facts), "stay": sorted(stays)}
