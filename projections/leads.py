"""Derive one lead's read model from its facts: stage stays, dimensions and anomalies.

The stage timeline comes from ``stage_changed`` facts in business order; every other lead fact
feeds the lead's dimensions or the anomaly checks. See docs/metrics.md, sections "Stages and
moves", "Lead dimensions" and "Anomalies".

The hand-offs and acceptances are kept too, each hand-off with what followed it (at or after its
business time): the first sales activity, the first rejection's reason, and whether the lead was
rejected or disqualified as a duplicate, disqualified, or recycled. Each also names its
neighbours: the previous hand-off, the acceptances around it and the lead's last; each
acceptance the previous one and the hand-offs around it. That is everything ``audit reconcile``
and ``audit sla`` ask of a lead (docs/definitions.md, "Audit"): a period's first hand-off of a
lead is the one whose previous hand-off is before the period, whether the lead was accepted in
the period follows from the acceptances around it, so both read one range of rows per table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.events import Fact
from projections.periods import FOREVER, to_us
from projections.stages import BACKWARD, SKIP, TERMINAL, classify
from projections.window import day_of, month_of

Row = tuple[Any, ...]

DIMENSIONS = ("lead_source", "segment", "country")
NO_CHANGE = "no_change"  # the anomaly of a stage change into the stage the lead is in
OWNER_FIELDS = {"owner_assigned": "owner", "lead_accepted": "owner", "handed_off": "to_owner"}
HANDOFF_FACTS = frozenset(
    {
        "handed_off",
        "lead_accepted",
        "lead_rejected",
        "lead_disqualified",
        "lead_recycled",
        "sales_activity_recorded",
    }
)
FUNNEL_FACTS = frozenset(
    {
        "stage_changed",
        "handed_off",
        "lead_accepted",
        "lead_rejected",
        "lead_recycled",
        "lead_disqualified",
    }
)


class LeadDeriver:
    """Folds a lead's facts, in business order, into stays, a dimension row and anomalies."""

    def __init__(self) -> None:
        """Start with a lead that holds no stage and is known for nothing."""
        self.stays: list[list[Any]] = []
        self.anomalies: list[Row] = []
        self.current: str | None = None
        self.dims: dict[str, Any] = dict.fromkeys((*DIMENSIONS, "owner", "channel"))
        self.first_contact: int | None = None  # earliest capture or touch
        self.handoffs: list[tuple[int, str | None, str]] = []  # (at, team, to_owner)
        self.accepts: list[int] = []
        self.activities: list[int] = []  # sales activities
        self.rejections: list[tuple[int, str]] = []  # (at, reason), business order
        self.duplicates: list[int] = []  # rejected or disqualified as a duplicate
        self.disqualified: list[int] = []
        self.recycled: list[int] = []

    def fact(self, fact: Fact) -> None:
        """Take one fact into account (facts must come in business order)."""
        at = to_us(fact.occurred_at)
        kind = fact.type_name
        if self.current in TERMINAL and kind in FUNNEL_FACTS:
            self._flag(at, "after_terminal", self.current, f"{kind} after {self.current}", fact)
        if kind == "stage_changed":
            self._stage(at, fact)
        elif kind in {"lead_captured", "touch_recorded"}:
            self.first_contact = at if self.first_contact is None else min(self.first_contact, at)
            if kind == "touch_recorded" and self.dims["channel"] is None:
                self.dims["channel"] = fact.channel  # type: ignore[attr-defined]
        if kind in {"lead_captured", "lead_updated"}:
            self._attributes(fact)
        owner = OWNER_FIELDS.get(kind)
        if owner is not None:
            self.dims["owner"] = getattr(fact, owner)
        if kind in HANDOFF_FACTS:
            self._handoff(at, kind, fact)

    def _handoff(self, at: int, kind: str, fact: Fact) -> None:
        """Keep a fact ``audit reconcile`` and ``audit sla`` read (docs/definitions.md, "Audit")."""
        if kind == "handed_off":
            self.handoffs.append((at, fact.team, fact.to_owner))  # type: ignore[attr-defined]
        elif kind == "lead_accepted":
            self.accepts.append(at)
        elif kind == "sales_activity_recorded":
            self.activities.append(at)
        else:
            if kind == "lead_rejected":
                self.rejections.append((at, fact.reason))  # type: ignore[attr-defined]
            elif kind == "lead_disqualified":
                self.disqualified.append(at)
            else:
                self.recycled.append(at)
            if kind != "lead_recycled" and "duplicate" in str(fact.reason).lower():  # type: ignore[attr-defined]
                self.duplicates.append(at)

    def _attributes(self, fact: Fact) -> None:
        attributes: dict[str, Any] = getattr(fact, "attributes", None) or {}
        for name in DIMENSIONS:
            value = getattr(fact, name, None) or attributes.get(name)
            if value not in (None, ""):
                self.dims[name] = str(value)

    def _stage(self, at: int, fact: Fact) -> None:
        stage: str = fact.to_stage  # type: ignore[attr-defined]
        claimed: str | None = fact.from_stage  # type: ignore[attr-defined]
        previous = self.current
        if stage == previous:
            self._flag(at, NO_CHANGE, stage, f"already in {stage}", fact)
            return
        if claimed is not None and claimed != previous:
            detail = f"source says from {claimed}, derived previous stage is {previous or 'none'}"
            self._flag(at, "from_mismatch", stage, detail, fact)
        move, skipped = classify(previous, stage)
        if move == SKIP:
            self._flag(at, "skip", stage, f"{previous}->{stage} skips {','.join(skipped)}", fact)
        elif move == BACKWARD:
            self._flag(at, "backward", stage, f"{previous}->{stage}", fact)
        reentry = any(stay[0] == stage for stay in self.stays)
        if self.stays:
            self.stays[-1][2] = at
            self.stays[-1][4] = stage
        marks = f",{','.join(skipped)}," if skipped else ""
        self.stays.append([stage, at, FOREVER, previous, None, move, marks, reentry])
        self.current = stage

    def _flag(self, at: int, kind: str, stage: str | None, detail: str, fact: Fact) -> None:
        self.anomalies.append((at, kind, stage, detail, fact.source, fact.source_id))

    def rows(self) -> dict[str, set[Row]]:
        """The derived rows, by table (subject and ledger-time columns excluded)."""
        anomalies = list(self.anomalies)
        if self.first_contact is not None:
            for stage, entered, *_ in self.stays:
                if stage in TERMINAL and entered < self.first_contact:
                    detail = f"{stage} before first contact"
                    anomalies.append((entered, "close_before_contact", stage, detail, None, None))
        stays = {(seq, *stay) for seq, stay in enumerate(self.stays)}
        first_entry = self.stays[0][1] if self.stays else None
        contact = min((t for t in (self.first_contact, first_entry) if t is not None), default=None)
        lead = (contact, *(self.dims[name] for name in (*DIMENSIONS, "owner", "channel")))
        flagged = sorted(anomalies, key=lambda row: tuple("" if v is None else v for v in row))
        return {
            "stay": stays,
            "lead": {lead},
            "anomaly": {(seq, *row) for seq, row in enumerate(flagged)},
            "handoff": self._handoff_rows(),
            "accept": self._accept_rows(),
        }

    def _handoff_rows(self) -> set[Row]:
        """Each hand-off with its neighbours and with what followed it at or after its time.

        (seq, at, the first day of its UTC month, its UTC day, the previous hand-off's time, team,
        to_owner, the first sales activity's time and its delay, whether the lead was rejected or
        disqualified as a duplicate, the first rejection's reason, whether it was disqualified,
        recycled; then the last acceptance before it, the first at or after it, and the lead's
        last acceptance.) A missing time or delay is None.
        """
        accepts = self.accepts
        last = accepts[-1] if accepts else None
        rows: set[Row] = set()
        previous = None
        for seq, (at, team, to_owner) in enumerate(self.handoffs):
            rejected = next((reason for t, reason in self.rejections if t >= at), None)
            acted = min((t for t in self.activities if t >= at), default=None)
            rows.add(
                (
                    seq,
                    at,
                    month_of(day_of(at)),
                    day_of(at),
                    previous,
                    team,
                    to_owner,
                    acted,
                    None if acted is None else acted - at,
                    any(t >= at for t in self.duplicates),
                    rejected,
                    any(t >= at for t in self.disqualified),
                    any(t >= at for t in self.recycled),
                    max((t for t in accepts if t < at), default=None),
                    min((t for t in accepts if t >= at), default=None),
                    last,
                )
            )
            previous = at
        return rows

    def _accept_rows(self) -> set[Row]:
        """Each acceptance with its neighbours.

        (seq, at, the previous acceptance's time, the last hand-off before it, the first hand-off
        at or after it.) A missing time is None.
        """
        handed = [at for at, _, _ in self.handoffs]
        rows: set[Row] = set()
        previous = None
        for seq, at in enumerate(self.accepts):
            before = max((t for t in handed if t < at), default=None)
            rows.add((seq, at, previous, before, min((t for t in handed if t >= at), default=None)))
            previous = at
        return rows


def derive_lead(facts: Sequence[Fact]) -> dict[str, set[Row]]:
    """The read-model rows of one lead whose effective facts are ``facts`` (business order)."""
    deriver = LeadDeriver()
    for fact in facts:
        deriver.fact(fact)
    return deriver.rows()
