"""One lead's story through the revenue cycle, written as the facts its source systems record.

inquiry -> mql (scoring) -> hand-off to an SDR (first activity, SLA breaches, reassignment) ->
accepted (sal) or rejected (recycled or disqualified) -> sql (an AE takes over) -> sqo (an
opportunity opens) -> won or lost with the deal. Recycled leads may come back to mql. The story is
told in business time and stops at the window's end (:class:`WindowEnd`), leaving the lead open.

Messy data is written as it happens: a few stages are never written (skips, see
:mod:`adapters.synthetic.lead_writer`), some leads are sent back a stage, a few closes are dated
before the first contact, and a few facts follow a terminal stage.
"""

from __future__ import annotations

from adapters.synthetic.clock import DAY, HOUR, lognormal
from adapters.synthetic.deals import Deal, deal_size
from adapters.synthetic.facts import Block, WindowEnd
from adapters.synthetic.lead_writer import LeadWriter
from adapters.synthetic.reference import (
    ACTIVITY_TYPES,
    DECISION,
    DOMAIN,
    EXTRA_TOUCHES,
    FALLOUT_DISQUALIFY_REASONS,
    FALLOUT_RECYCLE_REASONS,
    FIRST_ACTIVITY_HOURS,
    FIT_MULTIPLIER,
    INQUIRY_TO_MQL,
    JUNK_REASONS,
    JUNK_REVIEW,
    LATE_ACTIVITY_HOURS,
    LIFECYCLE,
    MARKETING_OPS,
    MAX_PASSES,
    NURTURE,
    P_ACCEPT,
    P_BACKDATED_CLOSE,
    P_BACKWARD,
    P_FALLOUT_RECYCLED,
    P_HOT_MQL,
    P_JUNK,
    P_MQL,
    P_NEVER_WORKED,
    P_REASSIGN,
    P_REENTRY,
    P_SLOW,
    P_SQL,
    P_SQO,
    P_STRAY,
    P_WIN,
    RECYCLE_ON_REJECT,
    REJECT_REASONS,
    REJECT_WEIGHTS,
    ROUTING,
    SAL_TO_NEXT,
    SALES_CYCLE,
    SCORING,
    SLA_MONITOR,
    SQL_TO_NEXT,
    STEP_BACK,
    STRAY_GAP,
    TERMINAL,
    TOUCH_GAP,
)
from adapters.synthetic.revenue import Customer
from adapters.synthetic.touches import capture_touch, later_touch, touch_source
from adapters.synthetic.world import account_executive, sdr

MAX_TOUCHES = 10
RESCORE_LOOKBACK = 180 * DAY  # the scoring change rescores open leads of the last six months
CAPTURED_BY = {  # channel -> (source, actor) of lead_captured, unless a web form captured it
    "webinar": ("hubspot", "system:webinar-sync"),
    "event": ("hubspot", f"{MARKETING_OPS[0]}@{DOMAIN}"),
    "content_syndication": ("hubspot", "system:syndication-sync"),
    "partner": ("salesforce", "system:partner-portal"),
}


class LeadStory(LeadWriter):
    """Lead ``L<number>``: everything that happens to them in the window, as it happens."""

    def run(self) -> Block:
        """Tell the story up to the window's end and return its facts."""
        try:
            self._capture()
            self._funnel()
        except WindowEnd:
            pass
        self._wrap_up()
        return self.block

    # --- marketing -------------------------------------------------------------------------------

    def _capture(self) -> None:
        rng, t, account = self.rng, self.t0, self.account
        campaign = self.world.picker.capture(self.clock.month_of(t), rng)
        channel = campaign.program.channel
        touch = capture_touch(channel, rng)
        self.hot = touch == "demo_request"
        source, actor = touch_source(touch, self.owner[0])
        if source == "hubspot":
            source, actor = CAPTURED_BY.get(channel, (source, actor))
        attributes = {
            "title": self.person.title,
            "industry": account.industry,
            "employees": account.employees,
        }
        self._fact(
            t,
            "lead_captured",
            source,
            actor,
            email=self.person.email,
            name=self.person.name,
            company=account.name,
            account_id=account.id,
            segment=account.segment,
            country=account.country,
            lead_source=channel,
            attributes=attributes,
        )
        self._touch(t, campaign, touch)
        self._move(t + 2, "inquiry", "hubspot", LIFECYCLE)
        self._score(t + 3, qualifies=False)
        for _ in range(min(MAX_TOUCHES - 1, int(rng.expovariate(1 / EXTRA_TOUCHES)))):
            t = self._later(t, TOUCH_GAP)
            self.touches.append(t)

    def _funnel(self) -> None:
        t = self._first_mql()
        for attempt in range(MAX_PASSES):
            if t is None:
                return
            recycled = self._sales_pass(t, reroute=attempt > 0)
            t = None if recycled is None else self._reenter(recycled)

    def _first_mql(self) -> int | None:
        rng = self.rng
        if self.hot:
            if rng.random() < P_HOT_MQL:
                return self.t0 + rng.randrange(60, 1_800)
        elif rng.random() < P_MQL[self.world.model(self.t0)] * FIT_MULTIPLIER[self.person.fit]:
            return self._later(self.t0, INQUIRY_TO_MQL)
        if rng.random() < P_JUNK:
            actor = f"{rng.choice(MARKETING_OPS)}@{DOMAIN}"
            self._disqualify(
                self._later(self.t0, JUNK_REVIEW), rng.choice(JUNK_REASONS), "hubspot", actor
            )
        return None

    def _reenter(self, recycled_at: int) -> int | None:
        """After nurture, return when the recycled lead qualifies again (if it does)."""
        rng = self.rng
        if rng.random() >= P_REENTRY:
            return None
        t = self._later(recycled_at, NURTURE)
        self.touches.extend(t - rng.randrange(HOUR, 10 * DAY) for _ in range(rng.randint(1, 2)))
        return t

    # --- sales -----------------------------------------------------------------------------------

    def _sales_pass(self, t: int, *, reroute: bool) -> int | None:
        """Qualify at ``t``, hand to sales and follow the lead; return when it was recycled.

        The first hand-off goes to the SDR drawn with the lead (who also captured it, for
        outbound leads); a lead that comes back is routed afresh.
        """
        rng = self.rng
        self._score(t, qualifies=True)
        self._move(t + 1, "mql", "hubspot", SCORING)
        handed = t + rng.randrange(30, 300)
        if reroute:
            self.owner = sdr(self.region, rng)
        self._fact(
            handed,
            "handed_off",
            "hubspot",
            ROUTING,
            to_owner=self.owner[0],
            team=self.owner[1],
        )
        self._assign(handed + 2, ROUTING)
        worked = self._first_activity(handed)
        if worked is None:
            aged = handed + rng.randrange(30 * DAY, 45 * DAY)
            return self._recycle(aged, "no_follow_up", "hubspot", LIFECYCLE)
        decided = self._later(worked, DECISION)
        for _ in range(rng.randrange(4)):
            between = self.clock.business(rng.randrange(worked, decided + 1), self.region, rng)
            self._activity(min(between, decided), rng.choice(ACTIVITY_TYPES))
        if rng.random() >= P_ACCEPT[self.world.model(t)]:
            return self._reject(decided)
        self._fact(decided, "lead_accepted", "salesforce", self.owner[0], owner=self.owner[0])
        self._move(decided + 1, "sal", "salesforce", self.owner[0])
        return self._work_sal(decided + 1)

    def _first_activity(self, handed: int) -> int | None:
        """Return when sales first acted on the hand-off (None: never), reassigning on a breach."""
        rng = self.rng
        draw = rng.random()
        if draw < P_NEVER_WORKED:
            return None
        if draw < P_NEVER_WORKED + P_SLOW:
            hours = 24 + lognormal(rng, *LATE_ACTIVITY_HOURS)
        else:
            hours = lognormal(rng, *FIRST_ACTIVITY_HOURS)
        t = self.clock.business(handed + hours * HOUR, self.region, rng)
        if t - handed > DAY and rng.random() < P_REASSIGN:
            moved = handed + DAY + rng.randrange(300, HOUR)
            self.owner = sdr(self.region, rng, besides=self.owner[0])
            self._assign(moved, SLA_MONITOR)
            t = max(t, self.clock.business(moved + rng.randrange(600, 4 * HOUR), self.region, rng))
        self._activity(t, rng.choice(ACTIVITY_TYPES[:2]))
        return t

    def _reject(self, t: int) -> int | None:
        reason = self.rng.choices(REJECT_REASONS, REJECT_WEIGHTS)[0]
        owner = self.owner[0]
        self._fact(t, "lead_rejected", "salesforce", owner, reason=reason, owner=owner)
        if reason in RECYCLE_ON_REJECT:
            return self._recycle(t + 30, reason, "salesforce", owner)
        self._disqualify(t + 30, reason, "salesforce", owner)
        return None

    def _step_back(self, t: int, back: str) -> int:
        """Sometimes send the lead back to ``back`` and forward again; return when it is back."""
        if self.rng.random() >= P_BACKWARD:
            return t
        stage = self.stage
        for to in (back, stage):
            t = self._later(t, STEP_BACK)
            self._move(t, to, "salesforce", self.owner[0])
        return t

    def _fall_out(self, t: int) -> int | None:
        rng, owner = self.rng, self.owner[0]
        if rng.random() < P_FALLOUT_RECYCLED:
            return self._recycle(t, rng.choice(FALLOUT_RECYCLE_REASONS), "salesforce", owner)
        self._disqualify(t, rng.choice(FALLOUT_DISQUALIFY_REASONS), "salesforce", owner)
        return None

    def _work_sal(self, t: int) -> int | None:
        t = self._later(self._step_back(t, "mql"), SAL_TO_NEXT)
        if self.rng.random() >= P_SQL:
            return self._fall_out(t)
        self._move(t, "sql", "salesforce", self.owner[0])
        handing = self.owner[0]
        self.owner = account_executive(self.account.segment, self.rng)
        self._assign(t + 60, handing)
        return self._work_sql(t + 60)

    def _work_sql(self, t: int) -> int | None:
        t = self._later(self._step_back(t, "sal"), SQL_TO_NEXT)
        if self.rng.random() >= P_SQO:
            return self._fall_out(t)
        self._move(t, "sqo", "salesforce", self.owner[0])
        self._open_deal(t + 5)
        return None

    def _open_deal(self, t: int) -> None:
        rng, account = self.rng, self.account
        deal = Deal(self.scene, account, kind="new", owner=self.owner[0])
        days = lognormal(rng, *SALES_CYCLE[account.segment])
        deal.open(
            t, deal_size(account.segment, rng), days=days, stage="discovery", lead_ids=(self.id,)
        )
        won_at = deal.pursue(t, P_WIN[account.segment], days, self._close)
        if won_at is not None:
            Customer(self.scene, account).run(won_at, deal.id, deal.amount)

    def _close(self, t: int, stage: str) -> None:
        """Follow the deal: the lead is won, lost, or back in sqo when the deal is reopened."""
        written_at = None
        if stage in TERMINAL and self.rng.random() < P_BACKDATED_CLOSE:
            backdated = self.t0 - self.rng.randrange(DAY, 30 * DAY)
            written_at = backdated if backdated >= 0 else None
        self._move(t, stage, "salesforce", self.owner[0], written_at)

    # --- after the story -------------------------------------------------------------------------

    def _wrap_up(self) -> None:
        """Write what the story left pending: held stages, touches, rescoring, stray facts."""
        if self.pending is not None:
            self._write_stage(*self.pending)
            self.pending = None
        closed_at, before = self._closure()
        until = self.clock.end if closed_at is None else closed_at
        for t in sorted(self.touches)[: MAX_TOUCHES - 1]:
            if t >= until:
                break
            campaign = self.world.picker.touch(self.clock.month_of(t), self.rng)
            self._touch(t, campaign, later_touch(campaign.program.channel, self.rng))
        self._rescore()
        if closed_at is not None and self.rng.random() < P_STRAY:
            self._stray(closed_at, before)

    def _closure(self) -> tuple[int | None, str | None]:
        """(when, previous stage) if the lead ended in a terminal stage, else (None, None)."""
        if not self.timeline or self.timeline[-1][1] not in TERMINAL:
            return None, None
        before = self.timeline[-2][1] if len(self.timeline) > 1 else None
        return self.timeline[-1][0], before

    def _rescore(self) -> None:
        """Rescore the lead at the scoring-model cutover if it is still with marketing then."""
        cutover = self.world.cutover
        if not self.t0 < cutover < self.clock.end or cutover - self.t0 > RESCORE_LOOKBACK:
            return
        stage = ""
        for t, entered in self.timeline:
            if t > cutover:
                break
            stage = entered
        t = cutover + self.rng.randrange(HOUR, 4 * HOUR)
        if stage in {"inquiry", "recycled"} and t < self.clock.end:
            self._score(t, qualifies=False)

    def _stray(self, closed_at: int, before: str | None) -> None:
        """Write a fact after the terminal stage: a stage change back, or an activity."""
        t = self._later(closed_at, STRAY_GAP)
        if t >= self.clock.end:
            return
        if before is not None and self.rng.random() < 0.5:
            self._write_stage(t, before, "salesforce", self.owner[0])
        else:
            self._activity(t, self.rng.choice(ACTIVITY_TYPES))
