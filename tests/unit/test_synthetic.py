"""The synthetic funnel generator: reproducible, valid for the ledger, messy and realistic.

Most tests read one 5,000-lead run (about 53,000 records, generated once for the module).
Conversion is measured on cohorts: of the leads that entered a stage at least 180 days before the
window's end, the share that ever reached the next one (a skip past it counts as reaching it).
"""

from __future__ import annotations

import gzip
import itertools
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.synthetic import generate, write_jsonl
from adapters.synthetic.clock import add_months
from ledger.codec import parse_fact

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

Record = dict[str, Any]
Moves = dict[str, list[tuple[datetime, str | None, str]]]

WINDOW_START = datetime(2024, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)
MATURE = END - timedelta(days=180)
RANK = {"inquiry": 0, "mql": 1, "sal": 2, "sql": 3, "sqo": 4, "won": 5, "lost": 5}
TERMINAL = {"won", "lost", "disqualified"}
CORRECTIONS = {"fact_retracted", "fact_amended"}
MONEY_FIELDS = ("amount", "arr", "cost")


def _at(record: Record) -> datetime:
    return datetime.fromisoformat(record["occurred_at"])


def _rank(stage: str | None) -> int | None:
    return RANK.get(stage) if stage is not None else None


def _skipped(record: Record) -> bool:
    start, end = _rank(record.get("from_stage")), _rank(record["to_stage"])
    return start is not None and end is not None and end - start > 1


def _backward(record: Record) -> bool:
    start, end = _rank(record.get("from_stage")), _rank(record["to_stage"])
    if start is None or end is None:
        return False
    return record["from_stage"] not in TERMINAL and end < start


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return list(generate(5_000))


@pytest.fixture(scope="module")
def moves(records: list[Record]) -> Moves:
    by_lead: Moves = defaultdict(list)
    for record in records:
        if record["type"] == "stage_changed":
            move = (_at(record), record.get("from_stage"), record["to_stage"])
            by_lead[record["lead_id"]].append(move)
    return by_lead


def _cohort_conversion(moves: Moves, entered: str, reached: str) -> float:
    cohort = converted = 0
    for lead_moves in moves.values():
        entries = [at for at, _, to in lead_moves if to == entered]
        if entries and min(entries) <= MATURE:
            cohort += 1
            converted += any(RANK.get(to, -1) >= RANK[reached] for _, _, to in lead_moves)
    return converted / cohort


# --- Reproducibility -----------------------------------------------------------------------------


def test_same_seed_gives_identical_records() -> None:
    """Two runs with the same arguments yield the same records in the same order."""
    assert list(generate(300, seed=3)) == list(generate(300, seed=3))


def test_different_seed_gives_different_records() -> None:
    """Another seed tells another story."""
    assert list(generate(300, seed=3)) != list(generate(300, seed=4))


def test_generation_is_lazy() -> None:
    """The first records of a billion-lead run come at once: nothing is built ahead."""
    first = list(itertools.islice(generate(10**9), 1_000))
    assert len(first) == 1_000


def test_bad_arguments_are_refused_at_the_call() -> None:
    """A negative lead count or an empty window is refused before anything is generated."""
    with pytest.raises(ValueError, match="leads"):
        generate(-1)
    with pytest.raises(ValueError, match="months"):
        generate(10, months=0)


# --- Valid for the ledger ------------------------------------------------------------------------


def test_every_record_is_a_valid_fact(records: list[Record]) -> None:
    """parse_fact accepts every record."""
    for record in records:
        parse_fact(record)


def test_records_leave_ledger_time_to_the_ledger(records: list[Record]) -> None:
    """No record carries recorded_at."""
    assert not any("recorded_at" in record for record in records)


def test_source_ids_are_unique(records: list[Record]) -> None:
    """Every (source, source_id) pair names exactly one record."""
    keys = [(record["source"], record["source_id"]) for record in records]
    assert len(set(keys)) == len(keys)


def test_corrections_follow_their_targets(records: list[Record]) -> None:
    """Every retraction and amendment names a record that came earlier in the stream."""
    seen: set[tuple[str, str]] = set()
    corrections = 0
    for record in records:
        if record["type"] in CORRECTIONS:
            corrections += 1
            assert (record["target_source"], record["target_source_id"]) in seen
        seen.add((record["source"], record["source_id"]))
    assert corrections > 0


def test_campaign_records_come_first(records: list[Record]) -> None:
    """All campaign facts precede the first lead fact."""
    kinds = [record["type"].startswith("campaign_") for record in records]
    first_other = kinds.index(False)
    assert all(kinds[:first_other])
    assert not any(kinds[first_other:])


def test_business_times_lie_inside_the_window(records: list[Record]) -> None:
    """Every occurred_at is a UTC timestamp inside [start, start + months)."""
    assert all(record["occurred_at"].endswith("Z") for record in records)
    assert all(WINDOW_START <= _at(record) < END for record in records)


def test_money_is_usd_with_two_decimal_places(records: list[Record]) -> None:
    """Amounts, ARR and costs are decimal strings with two places, in USD."""
    for record in records:
        for field in MONEY_FIELDS:
            if field in record:
                whole, cents = record[field].split(".")
                assert whole.isdigit()
                assert len(cents) == 2
                assert cents.isdigit()
                assert record["currency"] == "USD"


def test_touches_name_campaigns_created_earlier(records: list[Record]) -> None:
    """Every touch's campaign_id is a campaign the stream created."""
    created = {r["campaign_id"] for r in records if r["type"] == "campaign_created"}
    touched = {r["campaign_id"] for r in records if r["type"] == "touch_recorded"}
    assert 30 <= len(created) <= 50
    assert touched <= created


@settings(max_examples=25, deadline=None)
@given(
    leads=st.integers(min_value=0, max_value=40),
    seed=st.integers(min_value=0, max_value=2**32),
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)),
    months=st.integers(min_value=1, max_value=30),
)
def test_any_small_run_is_valid(leads: int, seed: int, start: date, months: int) -> None:
    """For any arguments, records parse, stay inside the window and have unique ids."""
    run = list(generate(leads, seed=seed, start=start, months=months))
    window_start = datetime(start.year, start.month, start.day, tzinfo=UTC)
    end = add_months(start, months)
    window_end = datetime(end.year, end.month, end.day, tzinfo=UTC)
    for record in run:
        assert window_start <= parse_fact(record).occurred_at < window_end
    assert len({(r["source"], r["source_id"]) for r in run}) == len(run)


# --- Messy and complete, like a real CRM ---------------------------------------------------------

CASES: dict[str, Callable[[Record], bool]] = {
    "skipped stage": lambda r: r["type"] == "stage_changed" and _skipped(r),
    "backward move": lambda r: r["type"] == "stage_changed" and _backward(r),
    "recycle": lambda r: r["type"] == "lead_recycled",
    "re-entry": lambda r: r["type"] == "stage_changed" and r.get("from_stage") == "recycled",
    "rejection": lambda r: r["type"] == "lead_rejected",
    "disqualification": lambda r: r["type"] == "lead_disqualified",
    "SLA reassignment": lambda r: r["type"] == "owner_assigned" and "sla" in r["actor"],
    "win": lambda r: r["type"] == "opportunity_won",
    "loss": lambda r: r["type"] == "opportunity_lost",
    "reopened deal": lambda r: r["type"] == "opportunity_reopened",
    "new logo": lambda r: r["type"] == "contract_started",
    "expansion": lambda r: r["type"] == "contract_expanded",
    "churn": lambda r: r["type"] == "contract_churned",
    "spend": lambda r: r["type"] == "campaign_spend_recorded",
    "retraction": lambda r: r["type"] == "fact_retracted",
    "amendment": lambda r: r["type"] == "fact_amended",
    "stage change after a terminal stage": lambda r: (
        r["type"] == "stage_changed" and r.get("from_stage") in TERMINAL
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_stream_contains(records: list[Record], case: str) -> None:
    """The run holds at least one record of each real-world case."""
    assert any(CASES[case](record) for record in records)


def test_some_closes_are_dated_before_first_contact(records: list[Record], moves: Moves) -> None:
    """A few leads are won or lost before they were captured, as a mistyped CRM date says."""
    captured = {r["lead_id"]: _at(r) for r in records if r["type"] == "lead_captured"}
    early = [
        lead
        for lead, lead_moves in moves.items()
        if any(to in {"won", "lost"} and at < captured[lead] for at, _, to in lead_moves)
    ]
    assert 0 < len(early) < 0.01 * len(captured)


def test_some_facts_arrive_after_later_leads(records: list[Record]) -> None:
    """A few lead facts are delivered after facts of leads captured well after them."""
    latest = late = 0
    for record in records:
        if "lead_id" in record:
            number = int(record["lead_id"][1:])
            late += number < latest - 10
            latest = max(latest, number)
    assert 0 < late < 0.01 * len(records)


def test_open_leads_and_deals_remain_at_the_window_end(records: list[Record]) -> None:
    """The story stops at the window's end, leaving leads in progress and deals open."""
    opened = {r["opportunity_id"] for r in records if r["type"] == "opportunity_opened"}
    closed = {
        r["opportunity_id"] for r in records if r["type"] in {"opportunity_won", "opportunity_lost"}
    }
    in_sales = {r["lead_id"] for r in records if r.get("to_stage") in {"sal", "sql"}}
    assert opened - closed
    assert in_sales


def test_scoring_model_changes_in_the_thirteenth_month(records: list[Record]) -> None:
    """Scores before November 2025 come from scoring-v1, later ones from scoring-v2."""
    cutover = datetime(2025, 11, 1, tzinfo=UTC)
    for record in records:
        if record["type"] == "score_changed":
            expected = "scoring-v1" if _at(record) < cutover else "scoring-v2"
            assert record["model_version"] == expected


def test_most_hand_offs_are_worked_within_a_day(records: list[Record]) -> None:
    """About 15% of first sales activities breach the 24-hour SLA."""
    handed: dict[str, datetime] = {}
    first: dict[str, datetime] = {}
    for record in records:
        if record["type"] == "handed_off":
            handed.setdefault(record["lead_id"], _at(record))
        elif record["type"] == "sales_activity_recorded":
            lead = record["lead_id"]
            first[lead] = min(first.get(lead, _at(record)), _at(record))
    worked = [lead for lead in handed if lead in first]
    breaches = sum(first[lead] - handed[lead] > timedelta(hours=24) for lead in worked)
    assert 0.08 <= breaches / len(handed) <= 0.22
    assert len(worked) < len(handed)


# --- Realistic rates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entered", "reached", "low", "high"),
    [
        ("inquiry", "mql", 0.30, 0.40),
        ("mql", "sal", 0.65, 0.75),
        ("sal", "sql", 0.50, 0.60),
        ("sql", "sqo", 0.65, 0.75),
    ],
)
def test_stage_conversion_is_realistic(
    moves: Moves, entered: str, reached: str, low: float, high: float
) -> None:
    """The cohort conversion from each stage to the next lies in the usual B2B range."""
    assert low <= _cohort_conversion(moves, entered, reached) <= high


def test_win_rate_is_realistic(moves: Moves) -> None:
    """Between 20% and 30% of the closed opportunities of mature sqo leads are won."""
    won = lost = 0
    for lead_moves in moves.values():
        entries = [at for at, _, to in lead_moves if to == "sqo"]
        if entries and min(entries) <= MATURE:
            outcomes = {to for _, _, to in lead_moves}
            won += "won" in outcomes
            lost += "lost" in outcomes and "won" not in outcomes
    assert 0.20 <= won / (won + lost) <= 0.30


# --- Writing JSON Lines --------------------------------------------------------------------------


def test_write_jsonl_writes_exactly_the_records(tmp_path: Path) -> None:
    """Each record becomes one line, and the count is returned."""
    run = list(generate(50))
    path = tmp_path / "events.jsonl"
    assert write_jsonl(iter(run), path) == len(run)
    assert [orjson.loads(line) for line in path.read_bytes().splitlines()] == run


def test_write_jsonl_gzips_a_gz_path(tmp_path: Path) -> None:
    """A path ending in .gz is written gzip-compressed."""
    run = list(generate(50))
    path = tmp_path / "events.jsonl.gz"
    assert write_jsonl(run, str(path)) == len(run)
    lines = gzip.decompress(path.read_bytes()).splitlines()
    assert [orjson.loads(line) for line in lines] == run


def test_write_jsonl_writes_stdout_for_a_dash(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """The path "-" writes the lines to standard output."""
    run = list(generate(5))
    assert write_jsonl(run, "-") == len(run)
    assert [orjson.loads(line) for line in capsysbinary.readouterr().out.splitlines()] == run


def test_write_jsonl_never_leaves_a_half_written_file(tmp_path: Path) -> None:
    """A failure midway leaves the previous file as it was, and no temporary file behind."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"previous\n")

    def failing() -> Iterator[Record]:
        yield from generate(5)
        message = "source went away"
        raise RuntimeError(message)

    with pytest.raises(RuntimeError, match="went away"):
        write_jsonl(failing(), path)
    assert path.read_bytes() == b"previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"]
