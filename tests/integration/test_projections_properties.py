"""Property tests (hypothesis, SQLite) of the funnel projection over generated histories.

Rebuild equals incremental catch-up whatever the batch boundaries and arrival order; the flow
identity holds; retracted facts vanish; and an independent reference computation (plain Python
over the raw facts, below) agrees with inventory, flow, conversion and velocity.
"""

from __future__ import annotations

import itertools
import random
import statistics
import tempfile
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import open_ledger, parse_fact
from projections.api import Reports
from projections.periods import Calendar
from projections.runner import Projection
from projections.window import ReportOptions

START = datetime(2025, 1, 1, tzinfo=UTC)
STAGES = ["inquiry", "mql", "sal", "sql", "sqo", "won", "lost", "recycled", "disqualified"]
ORDER = ["inquiry", "mql", "sal", "sql", "sqo", "won"]
MONTHS = [datetime(2025, m, 1, tzinfo=UTC) for m in range(1, 8)]
OPTIONS = ReportOptions(
    calendar=Calendar("month"), start=date(2025, 1, 1), as_of=date(2025, 6, 30), within=20
)
REPORTS = ("inventory", "flow", "conversion", "velocity", "anomalies")
PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@st.composite
def histories(draw: Any) -> list[dict[str, Any]]:
    """Stage changes (with ties), captures, then retractions and amendments of some of them."""
    records: list[dict[str, Any]] = []
    for lead in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            records.append(
                {
                    "type": "lead_captured",
                    "lead_id": f"L{lead}",
                    "segment": draw(st.sampled_from(["smb", "ent"])),
                    "occurred_at": START + timedelta(days=draw(st.integers(0, 40))),
                }
            )
        records.extend(
            {
                "type": "stage_changed",
                "lead_id": f"L{lead}",
                "to_stage": draw(st.sampled_from(STAGES)),
                "occurred_at": START
                + timedelta(days=draw(st.integers(0, 150)), hours=draw(st.sampled_from([0, 12]))),
            }
            for _ in range(draw(st.integers(0, 6)))
        )
    for n, record in enumerate(records):
        record.update(
            source="gen",
            source_id=f"f{n}",
            actor="gen",
            recorded_at=START + timedelta(days=draw(st.integers(0, 300))),
        )
    corrections: list[dict[str, Any]] = []
    moves = [r for r in records if r["type"] == "stage_changed"]
    for target in draw(st.lists(st.sampled_from(moves), unique_by=id, max_size=3)) if moves else []:
        change = draw(st.sampled_from(["retract", "stage", "time"]))
        base = {
            "source": "fix",
            "source_id": f"c{len(corrections)}",
            "actor": "ops",
            "occurred_at": START + timedelta(days=200),
            "target_source": "gen",
            "target_source_id": target["source_id"],
            "reason": "test",
            "recorded_at": target["recorded_at"] + timedelta(days=draw(st.integers(0, 30))),
        }
        if change == "retract":
            corrections.append({"type": "fact_retracted", **base})
        else:
            new = (
                {"to_stage": draw(st.sampled_from(STAGES))}
                if change == "stage"
                else {"occurred_at": stamp(START + timedelta(days=draw(st.integers(0, 150))))}
            )
            corrections.append({"type": "fact_amended", "changes": new, **base})
    return records + corrections


def as_fact(record: dict[str, Any]) -> Any:
    return parse_fact({k: stamp(v) if isinstance(v, datetime) else v for k, v in record.items()})


def record_all(url: str, records: list[dict[str, Any]], cuts: list[int]) -> None:
    """Record ``records`` in batches cut at ``cuts`` (sorted positions)."""
    ledger = open_ledger(url)
    bounds = [0, *sorted(set(cuts)), len(records)]
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            ledger.record([as_fact(r) for r in records[lo:hi]])
    ledger.close()


def project(url: str, *, rebuild: bool = False, page: int = 3) -> None:
    ledger = open_ledger(url)
    projection = Projection(ledger, page=page)
    projection.rebuild() if rebuild else projection.catch_up()
    projection.close()
    ledger.close()


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = [
            n
            for n in sa.inspect(conn).get_table_names()
            if n.startswith("rl_") and n != "rl_tracking"
        ]
        out = {
            n: sorted(map(tuple, conn.exec_driver_sql(f"SELECT * FROM {n}")), key=repr)  # noqa: S608 - names from our schema
            for n in names
        }
    engine.dispose()
    return out


def across_ledgers(tables: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """The tables less what only one ledger can say: each fact's position in that ledger."""
    facts = sorted((row[:-1] for row in tables["rl_fact"]), key=repr)  # position is last
    return {**tables, "rl_fact": facts}


def reports(url: str, options: ReportOptions = OPTIONS) -> dict[str, Any]:
    api = Reports(open_ledger(url).config)
    out = {name: api.run(name, options).rows for name in REPORTS}
    out["period"] = api.run("conversion", options.replace(basis="period")).rows
    api.close()
    return out


def arrival(records: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """A shuffled arrival order in which every correction still comes after its target."""
    roots = [r for r in records if "target_source_id" not in r]
    random.Random(seed).shuffle(roots)  # noqa: S311 - test data, not secrets
    return roots + [r for r in records if "target_source_id" in r]


@PROPERTY
@given(histories(), st.lists(st.integers(0, 40), max_size=5), st.integers(0, 2**16))
def test_rebuild_equals_incremental_catch_up_in_any_arrival_order(records, cuts, seed):
    """Batches and arrival order never change the tables; rebuild gives the same tables."""
    with tempfile.TemporaryDirectory() as tmp:
        first, second = f"sqlite:///{Path(tmp, 'a.db')}", f"sqlite:///{Path(tmp, 'b.db')}"
        record_all(first, records, [])
        project(first)
        shuffled = arrival(records, seed)
        for lo in range(0, len(shuffled), 4):  # catch up between batches
            record_all(second, shuffled[lo : lo + 4], cuts)
            project(second, page=2)
        project(second)  # an empty history still gets its (empty) tables
        incremental = dump(second)
        assert across_ledgers(incremental) == across_ledgers(dump(first))
        assert reports(second) == reports(first)
        project(second, rebuild=True)
        assert dump(second) == incremental


@PROPERTY
@given(histories())
def test_flow_identity_holds_for_every_stage_and_period(records):
    """End = start + inflow - outflow, and end equals the inventory report."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp, 'a.db')}"
        record_all(url, records, [])
        project(url)
        result = reports(url)
    for _period, _stage, start, inflow, outflow, end, *_ in result["flow"]:
        assert end == start + inflow - outflow
    inventory = {(r[0], r[3]): r[4] for r in result["inventory"] if r[2] == "lead"}
    for period, stage, *_, end, _n, _b, _s, _r in result["flow"]:
        assert inventory.get((period, stage), 0) == end


@PROPERTY
@given(histories(), st.data())
def test_retracted_facts_vanish_from_every_report(records, data):
    """Retracting facts gives the reports of a ledger that never held them."""
    roots = [r for r in records if "target_source_id" not in r]
    doomed = (
        data.draw(st.sets(st.sampled_from([r["source_id"] for r in roots]))) if roots else set()
    )
    retractions = [
        {
            "type": "fact_retracted",
            "source": "fix",
            "source_id": f"r-{sid}",
            "actor": "ops",
            "occurred_at": START,
            "recorded_at": START + timedelta(days=400),
            "target_source": "gen",
            "target_source_id": sid,
            "reason": "wrong",
        }
        for sid in sorted(doomed)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        full, clean = f"sqlite:///{Path(tmp, 'a.db')}", f"sqlite:///{Path(tmp, 'b.db')}"
        record_all(full, roots + retractions, [len(roots)])
        record_all(clean, [r for r in roots if r["source_id"] not in doomed] or roots[:0], [])
        project(full)
        project(clean)
        assert reports(full) == reports(clean)


# --- the independent reference computation -------------------------------------------------------


def effective(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply retractions and amendments in business order to the stage changes."""
    facts = {r["source_id"]: dict(r) for r in records if "target_source_id" not in r}
    fixes = sorted(
        (r for r in records if "target_source_id" in r),
        key=lambda r: (r["occurred_at"], r["recorded_at"], r["source"], r["source_id"]),
    )
    for fix in fixes:
        target = facts.get(fix["target_source_id"])
        if target is None:
            continue
        if fix["type"] == "fact_retracted":
            del facts[fix["target_source_id"]]
        else:
            for key, value in fix["changes"].items():
                target[key] = datetime.fromisoformat(value) if key == "occurred_at" else value
    return [f for f in facts.values() if f["type"] == "stage_changed"]


def reference_stays(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every stay of every lead: stage, entered, exited (None: open), previous stage, skipped."""
    by_lead: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fact in effective(records):
        by_lead[fact["lead_id"]].append(fact)
    out = []
    for moves in by_lead.values():
        moves.sort(key=lambda r: (r["occurred_at"], r["recorded_at"], r["source"], r["source_id"]))
        stays: list[dict[str, Any]] = []
        for move in moves:
            if stays and stays[-1]["stage"] == move["to_stage"]:
                continue
            prev = stays[-1]["stage"] if stays else None
            if stays:
                stays[-1]["exited"] = move["occurred_at"]
            skipped = []
            if prev in ORDER and move["to_stage"] in ORDER:
                skipped = ORDER[ORDER.index(prev) + 1 : ORDER.index(move["to_stage"])]
                skipped = [s for s in skipped if s != "won"]
            stays.append(
                {
                    "lead": move["lead_id"],
                    "stage": move["to_stage"],
                    "entered": move["occurred_at"],
                    "exited": None,
                    "prev": prev,
                    "skipped": skipped,
                }
            )
        out.extend(stays)
    return out


def in_at(stays: list[dict[str, Any]], stage: str, moment: datetime) -> int:
    """inventory(stage) at the instant just before ``moment``."""
    return sum(
        1
        for s in stays
        if s["stage"] == stage
        and s["entered"] < moment
        and (s["exited"] is None or s["exited"] >= moment)
    )


def reference_lags(
    stays: list[dict[str, Any]], a: str, b: str, p0: datetime, p1: datetime
) -> list[float]:
    """Per lead, first reach of ``b`` - first entry into ``a`` (days), for reaches in [p0, p1)."""
    lags = []
    for lead in {s["lead"] for s in stays}:
        own = [s for s in stays if s["lead"] == lead]
        t0 = min((s["entered"] for s in own if s["stage"] == a), default=None)
        t1 = min((s["entered"] for s in own if s["stage"] == b or b in s["skipped"]), default=None)
        if t0 is not None and t1 is not None and t0 <= t1 and p0 <= t1 < p1:
            lags.append((t1 - t0) / timedelta(days=1))
    return lags


def check_lags(
    velocity: dict[tuple[str, str, str], Any],
    stays: list[dict[str, Any]],
    label: str,
    p0: datetime,
    p1: datetime,
) -> None:
    """The velocity report's lags A->B of the period [p0, p1) equal the reference's."""
    for a, b in itertools.pairwise(ORDER):
        lags = reference_lags(stays, a, b, p0, p1)
        assert_statistics(velocity.get((label, "lag", f"{a}->{b}")), lags)


def assert_statistics(got: Any, values: list[float]) -> None:
    """A velocity row's count, mean, median and p90 are those of ``values`` (no row if none)."""
    if not values:
        assert got is None
        return
    assert got[0] == len(values)
    assert abs(got[1] - statistics.fmean(values)) < 1e-6
    assert got[2] == nearest_rank(values, 0.5)
    assert got[3] == nearest_rank(values, 0.9)


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[-(-len(ordered) * int(p * 10) // 10) - 1]


@PROPERTY
@given(histories())
def test_reports_agree_with_an_independent_reference_computation(records):
    """Inventory, flow, cohort conversion, time in stage, open age and lags match plain Python."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp, 'a.db')}"
        record_all(url, records, [])
        project(url)
        result = reports(url)
    stays = reference_stays(records)
    flow = {(r[0], r[1]): r[2:6] for r in result["flow"]}
    inventory = {(r[0], r[3]): r[4] for r in result["inventory"] if r[2] == "lead"}
    cohort = {(r[0], r[1], r[2]): (r[4], r[5], r[7], r[9]) for r in result["conversion"]}
    velocity = {(r[0], r[1], r[2]): r[3:] for r in result["velocity"]}
    for p0, p1 in itertools.pairwise(MONTHS):
        label = f"{p0:%Y-%m}"
        for stage in STAGES:
            inflow = sum(1 for s in stays if s["stage"] == stage and p0 <= s["entered"] < p1)
            outflow = sum(1 for s in stays if s["prev"] == stage and p0 <= s["entered"] < p1)
            expected = [in_at(stays, stage, p0), inflow, outflow, in_at(stays, stage, p1)]
            assert list(flow.get((label, stage), [0, 0, 0, 0])) == expected
            assert inventory.get((label, stage), 0) == expected[3]
            done = [
                (s["exited"] - s["entered"]) / timedelta(days=1)
                for s in stays
                if s["stage"] == stage and s["exited"] is not None and p0 <= s["exited"] < p1
            ]
            assert_statistics(velocity.get((label, "time_in_stage", stage)), done)
            ages = [
                (p1 - s["entered"]) / timedelta(days=1)
                for s in stays
                if s["stage"] == stage
                and s["entered"] < p1
                and (s["exited"] is None or s["exited"] >= p1)
            ]
            assert_statistics(velocity.get((label, "open_age", stage)), ages)
        for a in ORDER[:-1]:
            entries: dict[str, datetime] = {}
            for s in stays:
                if s["stage"] == a and p0 <= s["entered"] < p1:
                    entries[s["lead"]] = min(entries.get(s["lead"], s["entered"]), s["entered"])
            for b in ORDER[ORDER.index(a) + 1 :]:
                reach = {}
                for lead, t0 in entries.items():
                    hits = [
                        s
                        for s in stays
                        if s["lead"] == lead
                        and s["entered"] >= t0
                        and (s["stage"] == b or b in s["skipped"])
                    ]
                    if hits:
                        first = min(h["entered"] for h in hits)
                        reach[lead] = (
                            first - t0 <= timedelta(days=20),
                            all(h["stage"] != b for h in hits),
                        )
                want = (
                    len(entries),
                    sum(w for w, _ in reach.values()),
                    len(reach),
                    sum(s for _, s in reach.values()),
                )
                assert cohort.get((label, a, b), (0, 0, 0, 0)) == want
        check_lags(velocity, stays, label, p0, p1)
