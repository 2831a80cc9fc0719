"""The credit commands as a user runs them: each credit report in every format, and audit deal."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from ledger import open_ledger, parse_fact

WINDOW = ["--from", "2025-01-01", "--as-of", "2025-04-30"]
REPORTS = ("attribution", "spend", "sourced", "revenue")


def revledger(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "adapters.cli", "--db", url, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603


def fact(kind: str, sid: str, at: str, **fields: object) -> object:
    return parse_fact(
        {
            "type": kind,
            "source": "cli",
            "source_id": sid,
            "actor": "a",
            "occurred_at": at,
            "recorded_at": at,
            **fields,
        }
    )


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    db = f"sqlite:///{tmp_path_factory.mktemp('credit') / 'ledger.db'}"
    ledger = open_ledger(db)
    ledger.record(
        [
            fact(
                "campaign_created",
                "c1",
                "2025-01-01T00:00:00Z",
                campaign_id="C1",
                name="Webinar",
                channel="webinar",
            ),
            fact(
                "campaign_spend_recorded",
                "s1",
                "2025-01-31T00:00:00Z",
                campaign_id="C1",
                amount="100.00",
                currency="USD",
                period_start="2025-01-01",
                period_end="2025-01-31",
            ),
            fact("lead_captured", "l1", "2025-01-10T10:00:00Z", lead_id="L1", account_id="A1"),
            fact(
                "touch_recorded",
                "t1",
                "2025-01-10T10:00:00Z",
                lead_id="L1",
                channel="webinar",
                touch_type="visit",
                campaign_id="C1",
            ),
            fact(
                "opportunity_opened",
                "o1",
                "2025-01-20T10:00:00Z",
                opportunity_id="O1",
                account_id="A1",
                amount="1000.00",
                currency="USD",
                opportunity_type="new",
                stage="discovery",
            ),
            fact(
                "opportunity_won",
                "o1w",
                "2025-02-20T10:00:00Z",
                opportunity_id="O1",
                amount="1000.00",
                currency="USD",
            ),
        ]
    )
    ledger.close()
    assert revledger(db, "project").returncode == 0
    return db


@pytest.mark.parametrize("name", REPORTS)
def test_each_credit_report_prints_a_table(url, name):
    """Every credit report prints a titled table and its notes."""
    result = revledger(url, "report", name, *WINDOW)
    assert result.returncode == 0, result.stderr
    assert "2025-01" in result.stdout


@pytest.mark.parametrize("name", REPORTS)
def test_each_credit_report_prints_csv(url, name):
    """--format csv gives a header and one row per period line."""
    result = revledger(url, "report", name, *WINDOW, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows
    assert rows[0]["period"] == "2025-01"


@pytest.mark.parametrize("name", REPORTS)
def test_each_credit_report_prints_json(url, name):
    """--format json gives the rows and the notes."""
    result = revledger(url, "report", name, *WINDOW, "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["rows"]
    assert doc["notes"]


def test_attribution_takes_model_lookback_and_metric(url):
    """--model, --lookback and --metric reach the report."""
    result = revledger(
        url,
        "report",
        "attribution",
        *WINDOW,
        "--model",
        "time-decay",
        "--half-life",
        "3",
        "--lookback",
        "30",
        "--metric",
        "revenue",
        "--format",
        "json",
    )
    doc = json.loads(result.stdout)
    assert doc["rows"][0]["revenue"] == "1000.00"
    assert any("2^(-age/3 days)" in n for n in doc["notes"])


def test_attribution_reads_a_weights_file(url, tmp_path):
    """--weights FILE replaces the model with the file's weights."""
    path = tmp_path / "weights.json"
    path.write_text('{"name": "mine", "first": 1}')
    result = revledger(url, "report", "attribution", *WINDOW, "--weights", str(path))
    assert result.returncode == 0, result.stderr
    assert "mine: first 100%" in result.stdout


def test_spend_shows_the_target_line(url):
    """The spend report states the 10x target line and the overall ratio."""
    result = revledger(url, "report", "spend", *WINDOW, "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["rows"][0]["pipeline_to_spend"] == "10.00"
    assert any("target line 10x" in n for n in doc["notes"])


def test_sourced_shows_its_rule(url):
    """The sourced report prints the rule that decided every deal."""
    result = revledger(url, "report", "sourced", *WINDOW, "--format", "json")
    assert any(
        n.startswith("rule: marketing-sourced when") for n in json.loads(result.stdout)["notes"]
    )


def test_bad_model_is_one_line_and_exit_1(url):
    """An unknown model is a one-line error, no traceback."""
    result = revledger(url, "report", "attribution", "--model", "v")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "unknown model 'v'" in result.stderr


def test_split_on_a_report_that_cannot_split_is_refused(url):
    """--by on the revenue report is refused with a clear message."""
    result = revledger(url, "report", "revenue", "--by", "campaign")
    assert result.returncode == 1
    assert "cannot be split --by" in result.stderr


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_audit_deal_prints_every_section(url, fmt):
    """Audit deal prints the deal, its touches by model and its corrections in each format."""
    result = revledger(
        url, "audit", "deal", "O1", "--model", "u", "--as-of", "2025-04-30", "--format", fmt
    )
    assert result.returncode == 0, result.stderr
    assert "Touches of O1" in result.stdout
    assert "Corrections behind the credit of O1" in result.stdout


def test_audit_deal_json_puts_models_side_by_side(url):
    """In JSON the touch rows carry one credit per model, the chosen one first."""
    result = revledger(
        url, "audit", "deal", "O1", "--model", "w", "--as-of", "2025-04-30", "--format", "json"
    )
    touches = json.loads(result.stdout)["sections"][1]["rows"][0]
    models = [
        k for k in touches if k in {"w", "first", "last", "linear", "u", "full-path", "time-decay"}
    ]
    assert models[0] == "w"
    assert {touches[m] for m in models} == {"1000.00"}


def test_audit_of_an_unknown_deal_is_one_line_and_exit_1(url):
    """Auditing an opportunity the ledger does not hold says so."""
    result = revledger(url, "audit", "deal", "O404", "--as-of", "2025-04-30")
    assert result.returncode == 1
    assert "no opportunity 'O404'" in result.stderr
