"""``report attribution``: pipeline, revenue or deals credited to campaigns or channels per period.

Each deal whose credited milestone falls in a period (opportunity creation for pipeline and
deals, the win for revenue) shares its value between the touches of its journey under the
chosen model, exactly to the cent (docs/credit.md); the sums come from
:mod:`projections.credit.credited`. Amounts never mix currencies.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from projections.credit.credited import Tally, credit_sums
from projections.credit.data import check_tables, load_campaigns
from projections.credit.journeys import NO_TOUCH
from projections.gc_pause import without_gc
from projections.reading import Reader
from projections.report import Report
from projections.window import Window


def totals_note(totals: dict[str | None, Tally], what: str) -> list[str]:
    """The check a reader can do: credit adds up to the credited value, per currency."""
    return [
        f"Σ credit = Σ {what}{f' {c}' if c else ''} = {t.amount:,} over {t.deals} deals"
        for c, t in sorted(totals.items(), key=lambda kv: str(kv[0]))
    ]


@without_gc
def attribution(reader: Reader, window: Window) -> Report:
    """Credit per period and campaign (or channel), per currency."""
    options = window.options.credit
    metric, by = options.metric, options.by
    check_tables(reader)
    campaigns = load_campaigns(reader, window)
    credit = credit_sums(reader, window, (metric,), campaigns)[metric]
    rows = credit.rows
    periods: dict[tuple[int, str | None], Decimal] = defaultdict(Decimal)
    for (period, currency, _), tally in rows.items():
        periods[period, currency] += tally.amount
    money = metric != "deals"
    columns = ["period", *(["campaign", "name", "channel"] if by == "campaign" else ["channel"])]
    columns += [*(["currency"] if money else []), metric, "share", "touches", "opportunities"]
    report = Report(
        f"Attribution of {metric} per {window.options.calendar.kind} and {by}",
        columns,
        notes=[*window.notes(), *options.notes()],
    )
    order = sorted(rows.items(), key=lambda kv: (kv[0][0], str(kv[0][1]), -kv[1].amount, kv[0][2]))
    for (index, currency, key), tally in order:
        names = [key]
        if by == "campaign":
            names += list(campaigns.get(key, ("", "")))
        whole = periods[index, currency]
        report.rows.append(
            [
                window.periods[index].label,
                *names,
                *([currency] if money else []),
                tally.amount,
                float(tally.amount / whole) if whole else None,
                tally.touches,
                tally.deals,
            ]
        )
    report.notes += totals_note(credit.totals, metric)
    if credit.untouched:
        report.notes.append(
            f"{credit.untouched} opportunities had no credited touch in their window: {NO_TOUCH}"
        )
    return report
