"""The benchmark script runs end to end at a small size.

Its figures are not asserted: no timing tests.
"""

from __future__ import annotations

import json
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
    assert set(steps) == {"raw-insert", "ingest", "raw-read", "rebuild", "reports"}
    assert steps["ingest"]["events"] == results["events"] > 4000
    assert steps["rebuild"]["events"] == results["events"]
    assert {"inventory", "flow", "velocity", "anomalies"} <= set(steps["reports"])
    latencies = [v for v in steps["reports"].values() if isinstance(v, dict)]
    assert all(v["p50_ms"] > 0 and v["p95_ms"] >= v["p50_ms"] and v["first_ms"] > 0
               for v in latencies)
    assert "first run" in done.stdout
    assert all(figures["peak_mib"] > 0 for figures in steps.values())
