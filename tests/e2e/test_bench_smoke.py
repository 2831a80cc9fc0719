"""The benchmark script runs end to end at a small size.

Its figures are not asserted: no timing tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


@pytest.mark.parametrize("backend",
                         ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_bench_smoke_run_reports_every_step(backend: str, tmp_path: Path, request) -> None:
    """A 5,000-event run measures raw limits, ingest, rebuild and every report."""
    if backend == "postgres":
        request.getfixturevalue("pg_url")  # skips locally / fails in CI without PostgreSQL
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(BENCH), "--events", "5000", "--db", backend,  # noqa: S603 - our own command
                           "--repeat", "3", "--out", str(out),
                           "--workdir", str(tmp_path / "work" / backend)],  # made by the run
                          capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    steps = results["backends"][backend]
    assert set(steps) == {"raw-insert", "ingest", "raw-read", "rebuild", "raw-rewrite", "reports"}
    assert steps["ingest"]["events"] == results["events"] > 4000
    assert steps["rebuild"]["events"] == results["events"]
    assert steps["raw-rewrite"]["rows"] > results["events"]  # rl_fact alone has one per event
    assert 0 < steps["raw-rewrite"]["ceiling_ratio"] <= 1
    assert not list((tmp_path / "work" / backend).rglob("*.rewrite*"))  # the copy is gone
    assert {"inventory", "flow", "velocity", "anomalies"} <= set(steps["reports"])
    assert {"audit reconcile (12 months)", "audit sla (1 month)", "audit disagreements (1 month)",
            "definitions whatif (1 month)"} <= set(steps["reports"])
    assert "report audit reconcile (12 months)" in done.stdout
    latencies = [v for v in steps["reports"].values() if isinstance(v, dict)]
    assert all(v["p50_ms"] > 0 and v["p95_ms"] >= v["p50_ms"] and v["first_ms"] > 0
               for v in latencies)
    assert "first run" in done.stdout
    assert all(figures["peak_mib"] > 0 for figures in steps.values())


def test_bench_refuses_a_funnel_too_small_to_measure(tmp_path: Path) -> None:
    """--events under 1,000 is refused with one error line before anything is generated."""
    done = subprocess.run([sys.executable, str(BENCH), "--events", "10", "--db", "sqlite",  # noqa: S603 - our own command
                           "--workdir", str(tmp_path / "work")],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("--events must be at least 1,000 "
                                                          "(a smaller funnel is noise)")
    assert not (tmp_path / "work").exists()


def test_bench_without_its_postgresql_says_so_in_one_line(tmp_path: Path) -> None:
    """An unreachable server: one line naming it (no password) and what to do, no traceback."""
    env = {**os.environ, "REVLEDGER_BENCH_PG": "postgresql://postgres:secret@127.0.0.1:9/test"}
    done = subprocess.run([sys.executable, str(BENCH), "--events", "2000", "--db", "both",  # noqa: S603 - our own command
                           "--workdir", str(tmp_path)],
                          capture_output=True, text=True, check=False, timeout=60, env=env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot use PostgreSQL at postgresql://postgres:***@127.0.0.1:9/test:")
    assert lines[0].endswith("or run with --db sqlite")
    assert "secret" not in done.stderr
