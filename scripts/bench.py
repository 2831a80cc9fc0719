"""Benchmark revledger against the raw limits of its own store, measured in the same run.

    scripts/bench [--events N] [--db sqlite|postgres|both] [--out FILE] [--repeat R]

Steps, each in its own process (so its peak resident memory is its own):

1. ``generate``: a seeded realistic funnel of about N events (adapters.synthetic), as JSONL;
2. ``raw-insert``: the same number of rows shaped like the ledger's stored events (id, version,
   topic, orjson state) inserted with SQLite ``executemany`` / PostgreSQL ``COPY`` — the store's
   raw write limit;
3. ``ingest``: the JSONL file through the canonical adapter (validation, idempotency checks,
   checkpoints) — events/s and the ratio to ``raw-insert``;
4. ``raw-read``: read every stored event and decode its state with orjson — the raw read limit;
5. ``rebuild``: a full rebuild of the projections — events/s and the ratio to ``raw-read``;
6. ``raw-rewrite``: the rows the rebuild wrote, written again into an empty copy of its tables
   with SQLite ``executemany`` / PostgreSQL ``COPY``, then indexed — the store's raw limit for
   the rebuild's output, and the best ratio to ``raw-read`` a rebuild could reach were deriving
   free and its reads and writes overlapped (``raw-read`` seconds / ``raw-rewrite`` seconds);
7. ``reports``: each report run ``--repeat`` times (p50/p95 latency, the first run included and
   also shown on its own: it is the one that reads the tables' pages into the process), and
   the audit's ``reconcile``, ``sla`` (by month; by quarter, week and day too over the 12
   months) and ``disagreements`` over the same 12 months and over the last one, and
   ``definitions whatif`` over the last one (the step first proposes and
   approves a definition with a rule, once per ledger: the generated funnel has none).

Prints a table and writes JSON (``--out``, default ``bench-results.json``). No step asserts a
time: the numbers are for docs/benchmarks.md. PostgreSQL steps use ``REVLEDGER_BENCH_PG``
(default ``postgresql://postgres@127.0.0.1:5432/test``), a fresh schema per store.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.canonical import ingest_files  # noqa: E402
from adapters.synthetic import generate, write_jsonl  # noqa: E402
from ledger.application import open_ledger  # noqa: E402
from ledger.storage import parse_url  # noqa: E402

EVENTS_PER_LEAD = 10.6  # what the synthetic funnel produces on average
PG_DSN = os.environ.get("REVLEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
MIN_EVENTS = 1000
REPORTS = [
    ("inventory", {}),
    ("flow", {}),
    ("conversion", {"basis": "cohort"}),
    ("conversion", {"basis": "period"}),
    ("velocity", {}),
    ("anomalies", {}),
    ("attribution", {}),
    ("spend", {}),
    ("sourced", {}),
    ("revenue", {}),
]


def peak_mib() -> float:
    """The peak resident memory of the current process and its largest child, in MiB.

    A child is ingest's parse process; the sum of the two peaks bounds what they held at once.
    """
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (own + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def step_generate(args: argparse.Namespace) -> dict[str, Any]:
    """Write about ``events`` synthetic events to ``file``."""
    leads = max(1, round(args.events / EVENTS_PER_LEAD))
    started = time.perf_counter()
    count = write_jsonl(generate(leads, seed=7), args.file)
    return {"events": count, "leads": leads, "seconds": time.perf_counter() - started}


def _raw_chunks(path: str, size: int = 2000) -> Iterator[list[tuple[Any, ...]]]:
    """Rows shaped like stored events (id, version, topic, state), from the JSONL file."""
    topic = "ledger.events:StageChanged"
    with Path(path).open("rb") as handle:
        while chunk := [
            (uuid.uuid4(), 1, topic, line.rstrip(b"\n")) for line in itertools.islice(handle, size)
        ]:
            yield chunk


def step_raw_insert(args: argparse.Namespace) -> dict[str, Any]:
    """Insert rows shaped like the ledger's stored events as fast as the store allows.

    Rows are made from the file in chunks of 2,000 (constant memory); only the inserts and
    commits are timed.
    """
    config = parse_url(args.url)
    count, seconds = 0, 0.0
    if config.backend == "sqlite":
        import sqlite3  # noqa: PLC0415

        conn = sqlite3.connect(config.env["SQLITE_DBNAME"])
        conn.execute(
            "CREATE TABLE raw (originator_id TEXT, originator_version INTEGER, "
            "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
        )
        for chunk in _raw_chunks(args.file):
            params = [(r[0].hex, r[1], r[2], r[3]) for r in chunk]
            started = time.perf_counter()
            with conn:
                conn.executemany("INSERT INTO raw VALUES (?,?,?,?)", params)
            seconds += time.perf_counter() - started
            count += len(chunk)
        conn.close()
    else:
        with pg_connect() as conn:
            conn.execute(
                f"CREATE TABLE {config.schema}.raw (originator_id uuid, "
                "originator_version integer, topic text, state bytea, "
                "PRIMARY KEY (originator_id, originator_version))"
            )
            for chunk in _raw_chunks(args.file, 50_000):
                started = time.perf_counter()
                with (
                    conn.transaction(),
                    conn.cursor().copy(f"COPY {config.schema}.raw FROM STDIN") as copy,
                ):
                    for row in chunk:
                        copy.write_row(row)
                seconds += time.perf_counter() - started
                count += len(chunk)
    return {"rows": count, "seconds": seconds, "per_second": count / seconds}


def step_ingest(args: argparse.Namespace) -> dict[str, Any]:
    """Ingest the JSONL file through the canonical adapter."""
    ledger = open_ledger(args.url)
    started = time.perf_counter()
    summaries = ingest_files(ledger, [args.file], rejects_path=Path(args.file + ".rejects"))
    seconds = time.perf_counter() - started
    recorded = sum(s.recorded for s in summaries)
    ledger.close()
    return {"events": recorded, "seconds": seconds, "per_second": recorded / seconds}


def step_raw_read(args: argparse.Namespace) -> dict[str, Any]:
    """Read every stored event and decode its state, in pages, as a projection would."""
    ledger = open_ledger(args.url, create=False)
    recorder = ledger.recorder
    count, position = 0, 0
    started = time.perf_counter()
    while True:
        page = recorder.select_notifications(position + 1, 5000)
        if not page:
            break
        for notification in page:
            orjson.loads(notification.state)
        count += len(page)
        position = page[-1].id
    seconds = time.perf_counter() - started
    ledger.close()
    return {"events": count, "seconds": seconds, "per_second": count / seconds}


def step_rebuild(args: argparse.Namespace) -> dict[str, Any]:
    """Rebuild every projection from scratch."""
    from projections.runner import Projection  # noqa: PLC0415

    ledger = open_ledger(args.url, create=False)
    projection = Projection(ledger)
    started = time.perf_counter()
    position = projection.rebuild()
    seconds = time.perf_counter() - started
    projection.close()
    ledger.close()
    return {"events": position, "seconds": seconds, "per_second": position / seconds}


def step_raw_rewrite(args: argparse.Namespace) -> dict[str, Any]:
    """Write the rows the rebuild wrote again, raw: the store's limit for the rebuild's output.

    Every projection table of the rebuilt store is read back in chunks of 50,000 rows, in the
    order of its primary key, and written into an empty copy of it (its primary key only, as
    the rebuild's shadow tables are created) with SQLite ``executemany`` in 50,000-row
    transactions / PostgreSQL ``COPY`` (:func:`projections.build_bulk.copy_rows`, as the
    rebuild's roll-ups do); then the copy's secondary indexes are built. Only the
    writes, commits and index builds are timed. The copy is a sibling SQLite file / a sibling
    schema, removed afterwards.
    """
    import sqlalchemy as sa  # noqa: PLC0415

    from projections.database import create_engine  # noqa: PLC0415
    from projections.runner import create_bare, create_indexes  # noqa: PLC0415 - the rebuild's DDL
    from projections.schema import tables  # noqa: PLC0415

    config = parse_url(args.url)
    source = tables(config.schema)
    engine = create_engine(config)
    if config.backend == "sqlite":
        copy_path = Path(config.env["SQLITE_DBNAME"] + ".rewrite")
        copy_url, copy_schema = f"sqlite:///{copy_path}", None
    else:
        copy_schema = f"{config.schema}_rw"
        with pg_connect() as conn:
            conn.execute(f"CREATE SCHEMA {copy_schema}")
        copy_url = f"{PG_DSN}?schema={copy_schema}"
    target = tables(copy_schema)
    writer = create_engine(parse_url(copy_url), writer=True)
    count, seconds, indexing = 0, 0.0, 0.0
    per_table: dict[str, dict[str, float]] = {}  # rows and write seconds of each table
    try:
        with writer.begin() as conn:
            create_bare(conn, target)
        with engine.connect() as reading, writer.connect() as writing:
            for name, table in source.by_name.items():
                query = sa.select(table).order_by(*table.primary_key.columns)  # key order
                result = reading.execution_options(stream_results=True, yield_per=50_000)
                mine = per_table[table.name] = {"rows": 0, "seconds": 0.0}
                for chunk in result.execute(query).partitions():
                    rows = [tuple(row) for row in chunk]
                    started = time.perf_counter()
                    _write_raw(writing, target[name], rows)
                    mine["seconds"] += time.perf_counter() - started
                    mine["rows"] += len(rows)
                seconds += mine["seconds"]
                count += int(mine["rows"])
            started = time.perf_counter()
            create_indexes(writing, target)
            writing.commit()
            indexing = time.perf_counter() - started
    finally:
        writer.dispose()
        engine.dispose()
        if config.backend == "sqlite":
            for path in copy_path.parent.glob(copy_path.name + "*"):
                path.unlink()
        else:
            with pg_connect() as conn:
                conn.execute(f"DROP SCHEMA {copy_schema} CASCADE")
    total = seconds + indexing
    return {
        "rows": count,
        "seconds": total,
        "write_seconds": seconds,
        "index_seconds": indexing,
        "per_second": count / total,
        "tables": per_table,
    }


def _write_raw(conn: Any, table: Any, rows: list[tuple[Any, ...]]) -> None:
    """``rows`` into ``table`` in one transaction: ``executemany`` or ``COPY``."""
    from projections.build_bulk import copy_rows, target  # noqa: PLC0415

    columns = [column.name for column in table.columns]
    if conn.dialect.name == "postgresql":
        copy_rows(conn, table, columns, rows)
    else:
        marks = ",".join("?" * len(columns))
        statement = f"INSERT INTO {target(conn, table, columns)} VALUES ({marks})"  # noqa: S608
        conn.exec_driver_sql(statement, rows)  # executemany, in the transaction it begins
    conn.commit()


def step_reports(args: argparse.Namespace) -> dict[str, Any]:
    """Run each report ``repeat`` times; latency p50/p95 in milliseconds.

    The reports over 12 monthly periods as of 2026-10-31, then the audit's reconcile (its
    summary) and SLA (by month; by quarter, week and day too for the year) over the same 12 months
    and over the last of them, its
    disagreements over both, and a what-if over the last month, under the bench's definition
    (:func:`_define`).
    """
    from ledger.application import open_ledger  # noqa: PLC0415
    from projections.api import Reports  # noqa: PLC0415
    from projections.audit_api import FunnelAudit  # noqa: PLC0415
    from projections.periods import Calendar  # noqa: PLC0415
    from projections.window import ReportOptions  # noqa: PLC0415

    reports = Reports(parse_url(args.url))
    as_of = date(2026, 10, 31)
    out: dict[str, Any] = {}
    for name, extra in REPORTS:
        options = ReportOptions(as_of=as_of, **extra)
        label = f"{name}({extra['basis']})" if extra else name
        out[label] = _latency(partial(reports.run, name, options), args.repeat)
    reports.close()
    ledger = open_ledger(args.url)
    _define(ledger)
    audit = FunnelAudit(ledger)  # catches the projection up (it is, after the rebuild)
    first = date(2025, 11, 1)  # the 12 months to as_of
    october = date(2026, 10, 1)
    months, quarters = Calendar("month"), Calendar("quarter")
    weeks, days = Calendar("week"), Calendar("day")
    timed = {
        "audit reconcile (12 months)": lambda: audit.reconcile(first, as_of),
        "audit reconcile (1 month)": lambda: audit.reconcile(october, as_of),
        "audit sla (12 months)": lambda: audit.sla(months, first, as_of),
        "audit sla (1 month)": lambda: audit.sla(months, october, as_of),
        "audit sla by quarter (12 months)": lambda: audit.sla(quarters, first, as_of),
        "audit sla by week (12 months)": lambda: audit.sla(weeks, first, as_of),
        "audit sla by day (12 months)": lambda: audit.sla(days, first, as_of),
        "audit disagreements (12 months)": lambda: audit.disagreements(first, as_of),
        "audit disagreements (1 month)": lambda: audit.disagreements(october, as_of),
        "definitions whatif (1 month)": lambda: audit.whatif(DEFINITION, october, as_of),
    }
    for label, run in timed.items():
        out[label] = _latency(run, args.repeat)
    audit.close()
    ledger.close()
    return out


DEFINITION = "bench-1"  # the version the reports step proposes and approves, once per ledger
DEFINITION_TOML = f"""version = "{DEFINITION}"
effective_from = 2024-11-01
change_note = "the benchmark's definition: an MQL has a score of 60 and a fit of A to C"
stages = ["inquiry", "mql", "sal", "sql", "sqo", "won", "lost"]
terminal = ["won", "lost"]
side = ["recycled", "disqualified"]
[owners]
marketing = "cmo"
sales = "cro"
[handoff]
first_activity_within = "24h"
[[transitions]]
from = ["inquiry", "recycled"]
to = "mql"
rule = 'score >= 60 and fit in ("A", "B", "C")'
"""


def _define(ledger: Any) -> None:
    """Propose and approve the bench's definition, unless the ledger has it already.

    So that ``audit disagreements`` and ``definitions whatif`` judge the CRM's stage changes
    against a rule, as they would in use (the generated ledger holds no definition).
    """
    from projections.definitions import Catalogue, DefinitionBook  # noqa: PLC0415

    if DEFINITION in Catalogue.load(ledger).versions:
        return
    book = DefinitionBook(ledger)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{DEFINITION}.toml"
        path.write_text(DEFINITION_TOML)
        book.propose(path, "cmo")
    book.approve(DEFINITION, "marketing", "cmo")
    book.approve(DEFINITION, "sales", "cro")


def _latency(run: Callable[[], object], repeat: int) -> dict[str, float]:
    """p50 and p95 of ``repeat`` runs of ``run``, and its first run, in milliseconds."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        timings.append((time.perf_counter() - started) * 1000)
    quantiles = statistics.quantiles(timings, n=20) if len(timings) > 1 else timings * 19
    return {
        "p50_ms": statistics.median(timings),
        "p95_ms": quantiles[18],
        "first_ms": timings[0],  # the report's first run in the process (in the p95 too)
    }


STEPS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "generate": step_generate,
    "raw-insert": step_raw_insert,
    "ingest": step_ingest,
    "raw-read": step_raw_read,
    "rebuild": step_rebuild,
    "raw-rewrite": step_raw_rewrite,
    "reports": step_reports,
}


def run_step(name: str, url: str, file: str, events: int, repeat: int) -> dict[str, Any]:
    """Run one step in a fresh process; returns its figures and peak memory."""
    command = [
        sys.executable,
        __file__,
        "--step",
        name,
        "--url",
        url,
        "--file",
        file,
        "--events",
        str(events),
        "--repeat",
        str(repeat),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"bench step {name} failed")
    return json.loads(done.stdout)


def pg_connect() -> Any:
    """An autocommit connection to the bench's PostgreSQL server, or one error line and exit."""
    import psycopg  # noqa: PLC0415

    try:
        return psycopg.connect(PG_DSN, autocommit=True)
    except psycopg.OperationalError as error:
        reason = " ".join(str(error).split())
        raise SystemExit(
            f"error: cannot use PostgreSQL at {parse_url(PG_DSN).display}: {reason}; start it, "
            "point REVLEDGER_BENCH_PG at another server, or run with --db sqlite"
        ) from None


def fresh_url(backend: str, workdir: Path) -> tuple[str, Callable[[], None]]:
    """A new, empty store of the given backend, and a function that removes it."""
    if backend == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", lambda: [
            p.unlink(missing_ok=True) for p in workdir.glob(f"{path.name}*")
        ]
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with pg_connect() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with pg_connect() as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    return f"{PG_DSN}?schema={schema}", drop


def bench_backend(
    backend: str, file: str, events: int, repeat: int, workdir: Path
) -> dict[str, Any]:
    """All store-bound steps on one backend."""
    results: dict[str, Any] = {}
    raw_url, drop_raw = fresh_url(backend, workdir)
    try:
        results["raw-insert"] = run_step("raw-insert", raw_url, file, events, repeat)
    finally:
        drop_raw()
    url, drop = fresh_url(backend, workdir)
    try:
        for step in ("ingest", "raw-read", "rebuild", "raw-rewrite", "reports"):
            print(f"  {backend}: {step} ...", file=sys.stderr, flush=True)
            results[step] = run_step(step, url, file, events, repeat)
    finally:
        drop()
    results["ingest"]["ratio_to_raw_insert"] = (
        results["ingest"]["per_second"] / results["raw-insert"]["per_second"]
    )
    results["rebuild"]["ratio_to_raw_read"] = (
        results["rebuild"]["per_second"] / results["raw-read"]["per_second"]
    )
    # the best ratio a rebuild could reach were deriving free and reading and writing overlapped
    read, write = results["raw-read"]["seconds"], results["raw-rewrite"]["seconds"]
    results["raw-rewrite"]["ceiling_ratio"] = read / max(read, write)
    return results


RATIOS = ("ratio_to_raw_insert", "ratio_to_raw_read", "ceiling_ratio")


def table(results: dict[str, Any]) -> str:
    """The results as a plain-text table."""
    out = io.StringIO()
    out.write(
        f"{'backend':8} {'step':36} {'rate/s':>12} {'ratio':>7} {'seconds':>9} {'peak MiB':>9}\n"
    )
    for backend, steps in results["backends"].items():
        for step, figures in steps.items():
            if step == "reports":
                for report, latency in figures.items():
                    if isinstance(latency, dict):
                        p50, p95 = latency["p50_ms"], latency["p95_ms"]
                        out.write(
                            f"{backend:8} {'report ' + report:36} p50 {p50:6.0f} ms  "
                            f"p95 {p95:6.0f} ms {figures['peak_mib']:9.0f}  "
                            f"(first run {latency['first_ms']:.0f} ms)\n"
                        )
                continue
            ratio = next(
                (figures[k] for k in RATIOS if k in figures), None
            )  # ingest, rebuild: to the raw limit; raw-rewrite: the rebuild's ceiling
            out.write(
                f"{backend:8} {step:36} {figures['per_second']:12,.0f} "
                f"{'' if ratio is None else format(ratio, '.2f'):>7} "
                f"{figures['seconds']:9.1f} {figures['peak_mib']:9.0f}\n"
            )
    return out.getvalue()


def main() -> int:
    """Run the benchmark (or, with --step, one step of it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--out", default="bench-results.json")
    parser.add_argument("--repeat", type=int, default=20, help="runs of each report")
    parser.add_argument("--workdir", help="where the JSONL file and SQLite files go")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.events < MIN_EVENTS:
        parser.error(f"--events must be at least {MIN_EVENTS:,} (a smaller funnel is noise)")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.step:
        figures = STEPS[args.step](args)
        figures["peak_mib"] = peak_mib()
        sys.stdout.write(json.dumps(figures))
        return 0
    if args.db != "sqlite":  # before minutes of generating, not after
        pg_connect().close()
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="revledger-bench-") as tmp:
        workdir = Path(tmp)
        file = str(workdir / "events.jsonl")
        print(f"generating ~{args.events:,} events ...", file=sys.stderr, flush=True)
        generated = run_step("generate", "", file, args.events, args.repeat)
        results: dict[str, Any] = {
            "command": " ".join(["scripts/bench", *sys.argv[1:]]),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "events": generated["events"],
            "generate": generated,
            "backends": {},
        }
        backends = ("sqlite", "postgres") if args.db == "both" else (args.db,)
        for backend in backends:
            results["backends"][backend] = bench_backend(
                backend, file, generated["events"], args.repeat, workdir
            )
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(
        f"{results['events']:,} events; generated in "
        f"{generated['seconds']:.1f}s (peak {generated['peak_mib']:.0f} MiB)\n"
    )
    sys.stdout.write(table(results))
    sys.stdout.write(f"results written to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
