"""How a lead's facts are written: by which system and actor, and with the CRM's own quirks.

A lead is drawn once (person, account, arrival time, SDR) and then moves through stages. The
stage it is really in and the stage its CRM last wrote can differ: for a few leads one or two
stages are never written when the lead passes them (the next stage change then names the stage
before as ``from_stage``), and a close may be written with a date before the lead's first contact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.synthetic.accounts import person_at
from adapters.synthetic.clock import DAY, lognormal
from adapters.synthetic.facts import Block, WindowEnd
from adapters.synthetic.reference import (
    MQL_THRESHOLD,
    P_SKIP,
    RANK,
    SCORING,
    SKIP_WEIGHTS,
    SKIPS,
)
from adapters.synthetic.touches import touch_fields, touch_source
from adapters.synthetic.world import Scene, World, sdr

if TYPE_CHECKING:
    from adapters.synthetic.campaigns import Campaign

PendingStage = tuple[int, str, str, str]  # (second, stage, source, actor)


class LeadWriter:
    """Lead ``L<number>``: who they are, where they stand, and how their facts get written."""

    def __init__(self, world: World, number: int) -> None:
        """Draw the lead's person, account, arrival time and the stages its CRM will skip."""
        rng = world.rng("lead", number)
        self.world, self.rng, self.clock = world, rng, world.clock
        self.id = f"L{number:07d}"
        self.key = f"lead:{self.id}"
        self.block = Block(world.clock)
        self.scene = Scene(world, self.block, rng)
        self.account = world.accounts.pick(rng)
        self.person = person_at(self.account, rng)
        self.region = self.account.region
        position = (number - 1 + rng.random()) / world.leads
        self.t0 = self.clock.capture_time(position, self.region, rng)
        self.skips = set(rng.choices(SKIPS, SKIP_WEIGHTS)[0]) if rng.random() < P_SKIP else set()
        self.owner = sdr(self.region, rng)
        self.stage = ""  # where the lead really is
        self.written: str | None = None  # the last stage the source system wrote
        self.pending: PendingStage | None = None  # a stage held back, to be skipped
        self.timeline: list[tuple[int, str]] = []
        self.touches: list[int] = []
        self.hot = False

    def _fact(self, t: int, kind: str, source: str, actor: str, **fields: object) -> None:
        self.block.add(t, kind, source, self.key, actor, lead_id=self.id, **fields)

    def _later(self, t: int, median_sigma: tuple[float, float]) -> int:
        """Return the first working second a lognormal number of days after ``t``."""
        return self.clock.business(
            t + lognormal(self.rng, *median_sigma) * DAY, self.region, self.rng
        )

    def _move(
        self, t: int, stage: str, source: str, actor: str, written_at: int | None = None
    ) -> None:
        """Enter ``stage`` at ``t`` (written as of ``written_at`` when that differs)."""
        if t >= self.clock.end:
            raise WindowEnd
        self.timeline.append((t, stage))
        if self.pending is not None:
            if RANK.get(stage, -1) <= RANK[self.pending[1]]:
                self._write_stage(*self.pending)
            self.pending = None
        self.stage = stage
        entry = (t if written_at is None else written_at, stage, source, actor)
        if stage in self.skips:
            self.skips.discard(stage)
            self.pending = entry
        else:
            self._write_stage(*entry)

    def _write_stage(self, t: int, stage: str, source: str, actor: str) -> None:
        moved = {"from_stage": self.written} if self.written else {}
        self._fact(t, "stage_changed", source, actor, to_stage=stage, **moved)
        self.written = stage

    def _touch(self, t: int, campaign: Campaign, touch_type: str) -> None:
        source, actor = touch_source(touch_type, self.owner[0])
        self._fact(
            t, "touch_recorded", source, actor, **touch_fields(campaign, touch_type, self.rng)
        )

    def _score(self, t: int, *, qualifies: bool) -> None:
        model = self.world.model(t)
        threshold = MQL_THRESHOLD[model]
        score = self.rng.randint(threshold, 98) if qualifies else self.rng.randint(3, threshold - 8)
        self._fact(
            t,
            "score_changed",
            "hubspot",
            SCORING,
            score=score,
            model_version=model,
            fit=self.person.fit,
        )

    def _activity(self, t: int, activity: str) -> None:
        owner = self.owner[0]
        self._fact(
            t, "sales_activity_recorded", "salesforce", owner, activity_type=activity, owner=owner
        )

    def _assign(self, t: int, actor: str) -> None:
        self._fact(
            t, "owner_assigned", "salesforce", actor, owner=self.owner[0], team=self.owner[1]
        )

    def _recycle(self, t: int, reason: str, source: str, actor: str) -> int:
        self._fact(t, "lead_recycled", source, actor, reason=reason)
        self._move(t + 1, "recycled", source, actor)
        return t + 1

    def _disqualify(self, t: int, reason: str, source: str, actor: str) -> None:
        self._fact(t, "lead_disqualified", source, actor, reason=reason)
        self._move(t + 1, "disqualified", source, actor)
