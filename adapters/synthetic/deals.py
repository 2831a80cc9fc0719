"""Opportunities ``O0000001`` as the CRM records them: opened, staged, repriced, won or lost.

A new-business deal walks discovery -> evaluation -> proposal -> negotiation and closes as
``closed_won`` or ``closed_lost`` (losses happen at any stage, most early); amounts move at
proposal and negotiation; a few lost deals are reopened and closed again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from adapters.synthetic.clock import DAY, HOUR, lognormal
from adapters.synthetic.facts import CURRENCY, money
from adapters.synthetic.reference import (
    DEAL_SIZE,
    LOSS_REASONS,
    LOSS_STAGE_WEIGHTS,
    P_AMOUNT_CHANGE,
    P_REOPEN,
    P_REWIN,
    RECLOSE,
    REOPEN_GAP,
    REOPEN_REASONS,
    SALES_STAGES,
)

if TYPE_CHECKING:
    from random import Random

    from adapters.synthetic.accounts import Account
    from adapters.synthetic.world import Scene

OnClose = Callable[[int, str], None]  # (second, lead stage: "won", "lost" or "sqo" on reopening)


def hundreds(dollars: float) -> int:
    """Convert dollars to cents, rounded to whole hundreds of dollars (at least 100)."""
    return max(1, round(dollars / 100)) * 10_000


def deal_size(segment: str, rng: Random) -> int:
    """Draw the opening amount of a new-logo deal in ``segment``, in cents."""
    median, sigma = DEAL_SIZE[segment]
    return hundreds(lognormal(rng, median, sigma))


def ignore_close(t: int, stage: str) -> None:
    """Ignore the close of a deal that no lead follows (expansions and renewals)."""
    del t, stage


class Deal:
    """One opportunity on an account, worked by ``owner`` in the account's business hours."""

    def __init__(self, scene: Scene, account: Account, *, kind: str, owner: str) -> None:
        """Give a new opportunity of type ``kind`` (new, expansion or renewal) its number."""
        self.id = scene.world.next_id("O", 7)
        self.key = f"opportunity:{self.id}"
        self.clock = scene.world.clock
        self.block, self.rng, self.account = scene.block, scene.rng, account
        self.kind, self.owner = kind, owner
        self.stage = ""
        self.amount = 0

    def later(self, t: int, days: float) -> int:
        """Return the first working second ``days`` after ``t``."""
        return self.clock.business(t + days * DAY, self.account.region, self.rng)

    def _add(self, t: int, kind: str, **fields: object) -> None:
        self.block.add(
            t, kind, "salesforce", self.key, self.owner, opportunity_id=self.id, **fields
        )

    def open(
        self, t: int, amount: int, *, days: float, stage: str, lead_ids: Sequence[str] = ()
    ) -> None:
        """Open the deal at ``stage`` for ``amount`` cents, expected to close in ``days``."""
        self.stage, self.amount = stage, amount
        extra = {"lead_ids": list(lead_ids)} if lead_ids else {}
        self._add(
            t,
            "opportunity_opened",
            account_id=self.account.id,
            amount=money(amount),
            currency=CURRENCY,
            opportunity_type=self.kind,
            stage=stage,
            owner=self.owner,
            expected_close=self.clock.date_label(t + round(days * DAY)),
            **extra,
        )

    def move(self, t: int, stage: str) -> None:
        """Move the deal to ``stage``."""
        self._add(t, "opportunity_stage_changed", from_stage=self.stage, to_stage=stage)
        self.stage = stage

    def reprice(self, t: int, amount: int) -> None:
        """Change the deal's amount to ``amount`` cents."""
        self.amount = amount
        self._add(t, "opportunity_amount_changed", amount=money(amount), currency=CURRENCY)

    def win(self, t: int) -> None:
        """Close the deal won at its current amount."""
        self.move(t, "closed_won")
        self._add(t + 1, "opportunity_won", amount=money(self.amount), currency=CURRENCY)

    def lose(self, t: int, reason: str) -> None:
        """Close the deal lost."""
        self.move(t, "closed_lost")
        self._add(t + 1, "opportunity_lost", reason=reason)

    def pursue(self, t: int, p_win: float, days: float, on_close: OnClose) -> int | None:
        """Work the deal through the sales stages; return when it was won, if it was."""
        rng = self.rng
        lose_at = -1 if rng.random() < p_win else rng.choices(range(4), LOSS_STAGE_WEIGHTS)[0]
        shares = [0.3 + rng.random() for _ in SALES_STAGES]
        total = sum(shares)
        for i, share in enumerate(shares):
            t = self.later(t, days * share / total)
            if i == lose_at:
                return self._lost(t, on_close)
            if i + 1 < len(SALES_STAGES):
                self._advance(t, SALES_STAGES[i + 1])
        self.win(t)
        on_close(t, "won")
        return t

    def _advance(self, t: int, stage: str) -> None:
        self.move(t, stage)
        if stage in P_AMOUNT_CHANGE:
            chance, low, high = P_AMOUNT_CHANGE[stage]
            if self.rng.random() < chance:
                amount = hundreds(self.amount / 100 * self.rng.uniform(low, high))
                self.reprice(t + self.rng.randrange(600, 2 * HOUR), amount)

    def _lost(self, t: int, on_close: OnClose) -> int | None:
        rng = self.rng
        self.lose(t, rng.choice(LOSS_REASONS))
        on_close(t, "lost")
        if rng.random() >= P_REOPEN:
            return None
        t = self.later(t, lognormal(rng, *REOPEN_GAP))
        self._add(t, "opportunity_reopened", reason=rng.choice(REOPEN_REASONS))
        self.move(t + 1, "negotiation")
        on_close(t, "sqo")
        t = self.later(t, lognormal(rng, *RECLOSE))
        if rng.random() < P_REWIN:
            self.win(t)
            on_close(t, "won")
            return t
        self.lose(t, rng.choice(LOSS_REASONS))
        on_close(t, "lost")
        return None
