"""What a credit report is asked: model, lookback, metric, split, target, the sourced rule.

Carried inside :class:`projections.window.ReportOptions` as its ``credit`` field, so every
report keeps one options object. The sourced rule is a parameter (it will come from the
versioned funnel definition); its text is shown in every report that uses it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal

from ledger.events import OPPORTUNITY_TYPES
from projections.credit.models import Model, named_model
from projections.errors import ReportError

METRICS = ("pipeline", "revenue", "deals")
CREDIT_BY = ("campaign", "channel")
DEFAULT_LOOKBACK_DAYS = 365
DEFAULT_TYPES = ("new", "expansion")


@dataclass(frozen=True)
class SourcedRule:
    """Marketing-sourced: the deal's earliest linked lead came in through a marketing channel."""

    sales_channels: frozenset[str] = frozenset({"outbound"})

    def text(self) -> str:
        """The rule in words, as reports show it."""
        channels = ", ".join(sorted(self.sales_channels)) or "none"
        return (
            "marketing-sourced when the earliest-captured lead linked to the opportunity "
            "(its account's leads, its lead_ids and contact_ids), captured at or before the "
            "opportunity opened, came in through a marketing channel: the channel of that "
            f"lead's first touch (else its lead_source) is not a sales channel ({channels}); "
            "otherwise sales-sourced"
        )


@dataclass(frozen=True)
class CreditOptions:
    """The credit reports' options (docs/credit.md)."""

    model: Model = field(default_factory=lambda: named_model("linear"))
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    metric: str = "pipeline"
    by: str = "campaign"
    target: Decimal = Decimal(10)
    opportunity_types: tuple[str, ...] = DEFAULT_TYPES
    sourced: SourcedRule = field(default_factory=SourcedRule)

    def __post_init__(self) -> None:
        """Refuse unknown metrics, splits and opportunity types, and negative windows."""
        if self.metric not in METRICS:
            raise ReportError(f"unknown metric {self.metric!r}; use one of {', '.join(METRICS)}")
        if self.by not in CREDIT_BY:
            raise ReportError(f"cannot split credit by {self.by!r}; use campaign or channel")
        if self.lookback_days < 0:
            raise ReportError(f"--lookback {self.lookback_days}: must be 0 days or more")
        if self.target <= 0:
            raise ReportError(f"--target {self.target}: must be more than 0")
        unknown = sorted(set(self.opportunity_types) - OPPORTUNITY_TYPES)
        if unknown or not self.opportunity_types:
            allowed = ", ".join(sorted(OPPORTUNITY_TYPES))
            raise ReportError(f"--opp-type: {unknown[0] if unknown else 'none'}; use {allowed}")

    def replace(self, **changes: object) -> CreditOptions:
        """A copy with some options changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def notes(self) -> list[str]:
        """What the credit was computed with, in words."""
        types = ", ".join(self.opportunity_types)
        return [
            (
                f"model {self.model.describe()}; lookback {self.lookback_days} days before the "
                f"opportunity opened; opportunity types: {types}; definitions: docs/credit.md"
            )
        ]
