"""The default stage model: the order of funnel stages and how a move between two is classified.

See docs/metrics.md, section "Stages and moves".
"""

from __future__ import annotations

from collections.abc import Iterable

from projections.errors import ReportError

MAIN = ("inquiry", "mql", "sal", "sql", "sqo")
CLOSED = ("won", "lost")
SIDE = ("recycled", "disqualified")
STAGES = (*MAIN, *CLOSED, *SIDE)
TERMINAL = frozenset(CLOSED)
RANK: dict[str, int] = {**{s: i for i, s in enumerate(MAIN)}, "won": len(MAIN), "lost": len(MAIN)}
PROGRESSION = (*MAIN, "won")  # the stages a lead converts through, in order

NEW, FORWARD, SKIP, BACKWARD, SIDEWAYS = "new", "forward", "skip", "backward", "side"


def classify(previous: str | None, stage: str) -> tuple[str, tuple[str, ...]]:
    """Classify the move ``previous -> stage``: (kind, stages skipped over).

    Unknown stage names (a company's own stages) are treated like side states: recorded, never
    classified as skips or backward moves.
    """
    if previous is None:
        return NEW, ()
    if previous not in RANK or stage not in RANK:
        return SIDEWAYS, ()
    step = RANK[stage] - RANK[previous]
    if step < 0:
        return BACKWARD, ()
    if step == 0:
        return SIDEWAYS, ()  # won <-> lost
    if step == 1 or stage == "lost":
        return FORWARD, ()
    return SKIP, MAIN[RANK[previous] + 1 : RANK[stage]]


def next_stage(stage: str) -> str | None:
    """The stage that follows ``stage`` in the progression (None after won)."""
    if stage not in PROGRESSION[:-1]:
        return None
    return PROGRESSION[PROGRESSION.index(stage) + 1]


def later_stages(stage: str) -> tuple[str, ...]:
    """The stages after ``stage`` in the progression, nearest first."""
    if stage not in PROGRESSION:
        return ()
    return PROGRESSION[PROGRESSION.index(stage) + 1 :]


def first_reaches(later: Iterable[tuple[int, str, str]]) -> tuple[dict[str, int], set[str]]:
    """When each stage was first reached, and which were entered, from stays in business order.

    ``later``: ``(entered, stage, skipped)`` per stay; a stage is reached when entered or skipped
    over (``skipped`` is ``",a,b,"``). Cohort conversion counts a member's later stages from
    its stays at and after its entry (projections/conversion.py, and its roll-up in
    projections/rollup.py).
    """
    reached: dict[str, int] = {}
    direct: set[str] = set()
    for at, stage, skipped in later:
        direct.add(stage)
        if stage not in reached:
            reached[stage] = at
        if skipped:
            for over in skipped[1:-1].split(","):
                reached.setdefault(over, at)
    return reached, direct


def check_stage(name: str) -> str:
    """Return ``name`` if it is a known stage, else raise :class:`ReportError`."""
    if name not in STAGES:
        raise ReportError(f"unknown stage {name!r}; expected one of {', '.join(STAGES)}")
    return name
