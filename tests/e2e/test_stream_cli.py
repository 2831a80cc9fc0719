"""`revledger stream nats` and `stream publish` as a user runs them, against a real NATS server."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.application import open_ledger
from tests.e2e.test_cli_ledger import REVLEDGER, position, run
from tests.jetstream import Names, consumer_info, unique_stream

pytestmark = pytest.mark.nats


@pytest.fixture
def names(nats_url: str) -> Iterator[Names]:
    """Unique names; the commands create the stream, the fixture deletes it."""
    with unique_stream(nats_url, create=False) as fresh:
        yield fresh


def consumer_args(names: Names, *extra: str) -> list[str]:
    """The `stream nats` arguments for the test's stream and durable."""
    return ["stream", "nats", "--url", names.url, "--subject", names.subject, "--stream",
            names.stream, "--durable", names.durable, "--max-wait", "0.2", *extra]


def publish(names: Names, path: Path) -> str:
    """Publish a JSONL file with the CLI; returns its stderr."""
    return run("stream", "publish", "--url", names.url, "--subject", names.subject,
               "--stream", names.stream, str(path)).stderr


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """The JSON load summary's single row."""
    return json.loads(done.stdout)["rows"][0]


def count(db_url: str) -> int:
    """How many facts the ledger holds (notification ids can have gaps on PostgreSQL)."""
    ledger = open_ledger(db_url, create=False)
    try:
        return sum(1 for _ in ledger.facts())
    finally:
        ledger.close()


def wait_for(db_url: str, events: int, proc: subprocess.Popen[Any]) -> None:
    """Wait until the ledger's newest event id reaches ``events`` (or the consumer exited)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if position(db_url) >= events:
            return
        time.sleep(0.02)
    pytest.fail(f"the consumer did not record {events} events (exit code {proc.poll()})")


def test_killed_consumer_restarts_and_the_ledger_holds_each_message_once(
    db_url: str, names: Names, tmp_path: Path
) -> None:
    """SIGKILL mid-stream, restart with --idle-exit: exactly the N published facts are recorded."""
    funnel = tmp_path / "funnel.jsonl"
    run("generate", "--leads", "400", "--seed", "3", "--out", str(funnel))
    total = len(funnel.read_bytes().splitlines())
    run("--db", db_url, "init")
    proc = subprocess.Popen(  # noqa: S603 - our own command
        [REVLEDGER, "--db", db_url, *consumer_args(names, "--batch-size", "20", "--ack-wait", "2")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # let it create the stream and its consumer
        publish(names, funnel)
        wait_for(db_url, total // 4, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    landed = count(db_url)
    assert 0 < landed < total, "the kill must land mid-stream for this test to mean anything"
    done = run("--db", db_url, *consumer_args(names, "--idle-exit", "1", "--ack-wait", "2",
                                               "--format", "json"))
    resumed = summary(done)
    assert landed + resumed["recorded"] == total
    assert resumed["rejected"] == 0
    assert count(db_url) == total
    exported = run("--db", db_url, "export").stdout.splitlines()
    ids = {json.loads(line)["source_id"] for line in exported}
    assert ids == {json.loads(line)["source_id"] for line in funnel.read_text().splitlines()}


def test_sigterm_stops_the_consumer_cleanly(db_url: str, names: Names, tmp_path: Path) -> None:
    """SIGTERM ends the run with exit 0 and a summary; every recorded message is acknowledged."""
    funnel = tmp_path / "funnel.jsonl"
    run("generate", "--leads", "20", "--seed", "4", "--out", str(funnel))
    total = len(funnel.read_bytes().splitlines())
    publish(names, funnel)
    proc = subprocess.Popen(  # noqa: S603 - our own command
        [REVLEDGER, "--db", db_url, *consumer_args(names, "--format", "json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(db_url, total, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["rows"][0]["recorded"] == total
    assert consumer_info(names).num_ack_pending == 0


def test_republishing_a_file_is_dropped_by_message_id(
    db_url: str, names: Names, tmp_path: Path
) -> None:
    """The publisher's Nats-Msg-Id lets the stream drop a file published twice."""
    funnel = tmp_path / "funnel.jsonl"
    run("generate", "--leads", "30", "--seed", "5", "--out", str(funnel))
    total = len(funnel.read_bytes().splitlines())
    assert "0 dropped as duplicates" in publish(names, funnel)
    assert f"{total:,} dropped as duplicates" in publish(names, funnel)
    done = run("--db", db_url, *consumer_args(names, "--idle-exit", "0.5", "--format", "json"))
    assert (summary(done)["read"], summary(done)["recorded"]) == (total, total)


def test_rejected_messages_exit_3_and_go_to_the_rejects_file(
    sqlite_url: str, names: Names, tmp_path: Path
) -> None:
    """A malformed message is reported with its location, written to --rejects, and exits 3."""
    source = tmp_path / "mixed.jsonl"
    bad_time = {"type": "stage_changed", "occurred_at": "2025-01-06", "source": "crm",
                "source_id": "s1", "actor": "ops", "lead_id": "L1", "to_stage": "mql"}
    source.write_text(json.dumps(bad_time) + "\n{broken\n")
    publish(names, source)
    rejects = tmp_path / "rejects.jsonl"
    done = run("--db", sqlite_url, *consumer_args(names, "--idle-exit", "0.5", "--rejects",
                                                   str(rejects)), check=False)
    assert done.returncode == 3
    assert f"{names.subject}@{names.stream}:1: occurred_at:" in done.stderr
    assert len(rejects.read_text().splitlines()) == 2


def test_unreachable_server_is_one_line_error(sqlite_url: str) -> None:
    """No NATS server at the URL: one error line, exit 1, no traceback."""
    done = run("--db", sqlite_url, "stream", "nats", "--url", "nats://127.0.0.1:1",
               "--subject", "x", check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot connect to NATS at nats://127.0.0.1:1")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
