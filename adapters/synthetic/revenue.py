"""A new logo's recurring revenue after the win: its contract, expansions, renewals and churn.

The contract starts days after the deal is won, at the won amount as ARR. Each contract year an
account manager may sell an expansion (more often on larger accounts); ninety days before the
anniversary a renewal opportunity opens, and at the anniversary the customer renews flat, with a
price uplift or fewer seats, or churns (small businesses most often). A renewal keeps the same
contract, so ARR only changes through ``contract_expanded``, ``contract_contracted`` and
``contract_churned``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.synthetic.clock import DAY, HOUR, lognormal
from adapters.synthetic.deals import Deal, hundreds, ignore_close
from adapters.synthetic.facts import CURRENCY, money
from adapters.synthetic.reference import (
    BILLING,
    CHURN_REASONS,
    CONTRACTION_REASONS,
    CONTRACTION_SHARE,
    EXPANSION_CYCLE,
    EXPANSION_SHARE,
    P_CHURN,
    P_CONTRACTION,
    P_EXPANSION,
    P_EXPANSION_WIN,
    P_UPLIFT,
    UPLIFT_SHARE,
)
from adapters.synthetic.world import account_manager

if TYPE_CHECKING:
    from adapters.synthetic.accounts import Account
    from adapters.synthetic.clock import Clock
    from adapters.synthetic.world import Scene

YEAR = 365 * DAY


class Customer:
    """One contract of a won account, followed year by year until churn or the window's end."""

    def __init__(self, scene: Scene, account: Account) -> None:
        """Give a new customer's contract its number and its account manager."""
        self.scene, self.account = scene, account
        self.clock: Clock = scene.world.clock
        self.block, self.rng = scene.block, scene.rng
        self.contract = scene.world.next_id("CTR", 6)
        self.key = f"contract:{self.contract}"
        self.manager = account_manager(self.rng)
        self.arr = 0

    def _at(self, t: float) -> int:
        return self.clock.business(t, self.account.region, self.rng)

    def _add(self, t: int, kind: str, **fields: object) -> None:
        self.block.add(
            t,
            kind,
            "billing",
            self.key,
            BILLING,
            account_id=self.account.id,
            contract_id=self.contract,
            currency=CURRENCY,
            **fields,
        )

    def run(self, won_at: int, opportunity_id: str, arr: int) -> None:
        """Start the contract after the win at ``arr`` cents, then live it year by year."""
        start = self._at(won_at + self.rng.randrange(DAY, 14 * DAY))
        self.arr = arr
        self._add(start, "contract_started", arr=money(arr), opportunity_id=opportunity_id)
        while True:
            self._expand(start)
            if not self._renew(start + YEAR):
                return
            start += YEAR

    def _expand(self, start: int) -> None:
        rng = self.rng
        if rng.random() >= P_EXPANSION[self.account.segment]:
            return
        t = self._at(start + rng.uniform(60, 250) * DAY)
        deal = Deal(self.scene, self.account, kind="expansion", owner=self.manager)
        days = lognormal(rng, *EXPANSION_CYCLE)
        deal.open(
            t,
            hundreds(self.arr / 100 * rng.uniform(*EXPANSION_SHARE)),
            days=days,
            stage="discovery",
        )
        won_at = deal.pursue(t, P_EXPANSION_WIN, days, ignore_close)
        if won_at is not None:
            self.arr += deal.amount
            self._add(
                self._at(won_at + DAY),
                "contract_expanded",
                amount=money(deal.amount),
                opportunity_id=deal.id,
            )

    def _renew(self, anniversary: int) -> bool:
        rng = self.rng
        deal = Deal(self.scene, self.account, kind="renewal", owner=self.manager)
        opened = self._at(anniversary - 90 * DAY)
        deal.open(opened, self.arr, days=90, stage="proposal")
        decided = self._at(anniversary - rng.uniform(5, 30) * DAY)
        deal.move(self._at(opened + (decided - opened) // 2), "negotiation")
        if rng.random() < P_CHURN[self.account.segment]:
            reason = rng.choice(CHURN_REASONS)
            deal.lose(decided, reason)
            self._add(
                self._at(anniversary), "contract_churned", amount=money(self.arr), reason=reason
            )
            return False
        arr = self._renewal_arr()
        if arr != self.arr:
            deal.reprice(decided - rng.randrange(HOUR, 2 * DAY), arr)
        deal.win(decided)
        self._change(self._at(anniversary), arr, deal.id)
        return True

    def _renewal_arr(self) -> int:
        rng = self.rng
        if rng.random() < P_CONTRACTION:
            return hundreds(self.arr / 100 * (1 - rng.uniform(*CONTRACTION_SHARE)))
        if rng.random() < P_UPLIFT:
            return hundreds(self.arr / 100 * (1 + rng.uniform(*UPLIFT_SHARE)))
        return self.arr

    def _change(self, t: int, arr: int, opportunity_id: str) -> None:
        if arr > self.arr:
            self._add(
                t, "contract_expanded", amount=money(arr - self.arr), opportunity_id=opportunity_id
            )
        elif arr < self.arr:
            reason = self.rng.choice(CONTRACTION_REASONS)
            self._add(t, "contract_contracted", amount=money(self.arr - arr), reason=reason)
        self.arr = arr
