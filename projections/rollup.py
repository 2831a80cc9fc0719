"""Per-day roll-ups of the funnel tables, so that balance reports do not scan every stay.

Inventory at an instant ``t`` is ``#(stays entered before t) - #(stays exited before t)``, and a
period's transitions are the stay entries inside it, so every stage balance the inventory, flow and
period-conversion reports show is a sum of *entries* and *exits* over a time range. Two tables
keep those counts per UTC day, as the ledger knows them now (``known_to = FOREVER`` rows only):

- ``rl_roll_stay``: per (split dimension, value, side, grain, day, previous stage, stage, move,
  re-entry) the number of stay entries (side ``in``) or exits (side ``out``, with empty
  previous stage and move). Dimension ``""`` counts every stay; ``lead_source``, ``segment``,
  ``country``, ``owner`` and ``channel`` count the stays of leads whose current dimension row
  exists, under that row's value (``(none)`` when empty), exactly as ``--by`` joins them;
- ``rl_roll_opp``: per (side, grain, day, stage, currency) the open-opportunity rows starting
  (``in``) and ending (``out``), with their amount units;
- ``rl_roll_open``: per (split dimension, value, UTC day of entry, stage) the stays that have not
  ended (``exited_us = FOREVER``): how many, and the sum of their entry times' offsets from the
  start of that day (``since``, microseconds). Velocity reads it for the age of open stays
  (projections/velocity.py): a stay that never ends (a lead's current stage) is open at every
  later period end, so these are most of the stays open at any one;
- ``rl_roll_ended``: the stays that did end, per bound (a UTC day that starts a month or an ISO
  week: :func:`~projections.window.is_bound`) they were open at (entered before its midnight,
  exited at or after it), UTC day of entry and stage: how many, and the sum of their entry
  offsets, like ``rl_roll_open``, for every lead together. With it, the open stays at a period
  end that is a bound are counts per day of entry, without reading the stays;
- ``rl_roll_cohort``: cohort conversion's entries (projections/conversion.py), per (split
  dimension, value, source stage, UTC day of the entry, UTC day of the lead's entry into the
  same stage before it or ``NO_ENTRY``, target): for target ``""`` the entries (a cohort's
  members are the entries of its period whose entry before falls before the period), for each
  later stage the entries that reached it afterwards: ever, within each of ``COHORT_WITHIN``
  days, and only by skipping it. A reach counts whatever its time, so the report uses it when
  its cap is after every stay's entry (a report up to now); a cohort depends only on its lead's
  own stays;
- ``rl_roll_dur`` and ``rl_dur_sample``: velocity's times in stage, lags and sales cycles, as
  histograms per UTC day, ISO week, UTC month and quarter and as every duration, to find a
  rank's exactly (projections/durations.py); like the cohorts, a lead's depend only on its own
  stays;
- ``rl_roll_deal``: per (what, UTC day, until, type, currency) the revenue report's sums
  (projections/credit/revenue.py): deals ``opened`` (by opportunity type and currency); ``won``
  closes with an amount (by type and won currency: count, amount, and cycle, the close time
  less the opening) and ``lost`` closes (by type and the deal's currency), each with ``until``,
  the UTC day of the deal's next close (:data:`NEVER` when there is none), because a close is
  the deal's outcome at a cap only while no later close precedes the cap; and ARR movements
  (``arr``, by kind and currency). Amounts are summed in ten-thousandths, with how many had 1 to
  4 decimal places (so a sum is shown with the same digits as the exact sum of the amounts) and
  how many were finer than a ten-thousandth (``odd``: the report then reads the tables);
- ``rl_roll_credit``: the default model's credit per UTC day of the milestone
  (:mod:`projections.credit.kept`), with ``rl_deal_credit`` holding each deal's share of it.
  A deal's channel and credit depend on other subjects' rows (its account's leads and the leads
  it names), so a catch-up re-decides and re-credits the deals those leads reach (``_settle``).

The stay and opportunity counts are kept at two grains: per UTC day (grain ``d``) and per UTC
month (grain ``m``, keyed by the month's first day), so a year of monthly periods reads a few
month rows per stage.

A range ``[a, b)`` is answered from whole UTC days in the roll-up plus the stays of the partial
days at either end read from the stay table (which has indexes on entry and exit time), so any
reporting timezone and any period boundaries give exact counts. The projection keeps the tables
current: a rebuild aggregates the shadow tables in SQL (:func:`build`), and every incremental
re-derivation applies the difference between a subject's old and new current rows
(:class:`Delta`). Reports at an earlier ledger time (``--known-at``) read the bitemporal tables.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from projections import (
    build_bulk,  # a module: build_bulk imports store, which imports this
    ranks,
)
from projections.credit.data import CreditData
from projections.credit.decide import as_deal, channels_of
from projections.credit.kept import CREDIT_KEY, Counts, amount_counts, credit_counts, deal_data
from projections.database import driver_mark
from projections.durations import (
    DUR_KEY,
    DUR_MEASURES,
    SAMPLE_KEY,
    DurationDelta,
    Stay,
    lead_durations,
    lead_rows,
    sample_keys,
)
from projections.periods import FOREVER
from projections.schema import (
    COHORT_MEASURES,
    COHORT_WITHIN,
    CREDIT_MEASURES,
    DEAL_MEASURES,
    Tables,
)
from projections.stages import PROGRESSION, first_reaches, later_stages
from projections.window import (
    DAY,
    MONDAY,
    MONTH,
    QUARTER,
    WEEK,
    bounds_in,
    day_of,
    month_of,
    quarter_of,
)

DAY_US = 86_400_000_000
BY_FIELDS = ("lead_source", "segment", "country", "owner", "channel")
DIMS = ("", *BY_FIELDS)
NONE_GROUP = "(none)"
IN, OUT = "in", "out"
STAY_KEY = ("dim", "value", "side", "grain", "day", "prev", "stage", "move", "reentry")
OPP_KEY = ("side", "grain", "day", "stage", "currency")
OPEN_KEY = ("dim", "value", "day", "stage")
StayKey = tuple[str, str, str, str, int, str, str, str, bool]
OppKey = tuple[str, str, int, str, str]
OpenKey = tuple[str, str, int, str]
ENDED_KEY = ("bound", "stage", "day")
EndedKey = tuple[int, str, int]
COHORT_KEY = ("dim", "value", "source", "day", "prev", "target")
CohortKey = tuple[str, str, str, int, int, str]
NO_ENTRY = -(2**31)  # rl_roll_cohort's ``prev`` when the lead had not entered the stage before
# The longest period in days (a quarter): an entry before that far back is before the start of
# any period holding the day, so rl_roll_cohort keeps it as NO_ENTRY (fewer distinct rows).
PREV_HORIZON = 92
COHORT_FLUSH_KEYS = 200_000  # the rebuild adds its cohort sums to the table every so many keys
WRITER_ROWS = 20_000  # rows the rebuild's roll-up writers hold before inserting them
INDEXED_WHEN_FILLED = ("dur_sample",)  # a rebuild builds their indexes after filling them
# the roll-ups build_rest fills (build_leads fills the others): from the stays, the opportunities
# and the deals
REST_TABLES = (
    "roll_stay",
    "roll_open",
    "roll_ended",
    "roll_opp",
    "deal_source",
    "deal_credit",
    "roll_credit",
    "roll_deal",
)
COHORT_TARGETS = {source: later_stages(source) for source in PROGRESSION[:-1]}
DEAL_KEY = ("what", "day", "until", "type", "currency", "channel")
DealKey = tuple[str, int, int, str, str, str]
IN_QUERY = 500  # values per IN list
DUR_COLUMNS = ("grain", "day", "measure", "key", "bucket", "n", "total")  # rl_roll_dur's
NEVER = 2**31 - 1  # rl_roll_deal's ``until`` of a close that no later close follows
WON, LOST = "won", "lost"


def _grains(day: int) -> tuple[tuple[str, int], tuple[str, int]]:
    return (DAY, day), (MONTH, month_of(day))


_dimensions = itemgetter(*BY_FIELDS)


def _splits(values: Sequence[Any] | None) -> list[tuple[str, str]]:
    """The (dimension, group) pairs a stay counts under, given its lead's ``BY_FIELDS`` values.

    Always the whole (``""``, ``""``); each dimension's value (``(none)`` when empty) only when
    the lead has a dimension row (``values`` not None), exactly as ``--by`` joins it.
    """
    out = [("", "")]
    if values is not None:
        out += [
            (dim, NONE_GROUP if value is None else str(value))
            for dim, value in zip(BY_FIELDS, values, strict=True)
        ]
    return out


def _lead_splits(lead: Mapping[Any, Any] | None) -> list[tuple[str, str]]:
    """:func:`_splits` of a lead's current dimension row (None: it has none)."""
    return _splits(None if lead is None else _dimensions(lead))


# --- keeping the roll-ups current ---------------------------------------------------------------


def stay_counts(
    stays: Iterable[Mapping[Any, Any]], leads: Mapping[Any, Mapping[Any, Any]], sign: int = 1
) -> Counter[StayKey]:
    """The roll-up counts of ``stays`` (current rows), split by their leads' current rows."""
    out: Counter[StayKey] = Counter()
    for stay in stays:
        lead = leads.get(stay["lead_id"])
        prev = stay["prev_stage"] or ""
        stage, move, reentry = stay["stage"], stay["move"], bool(stay["reentry"])
        entered, exited = stay["entered_us"], stay["exited_us"]
        for dim, value in _lead_splits(lead):
            for grain, at in _grains(day_of(entered)):
                out[(dim, value, IN, grain, at, prev, stage, move, reentry)] += sign
            if exited < FOREVER:
                for grain, at in _grains(day_of(exited)):
                    out[(dim, value, OUT, grain, at, "", stage, "", False)] += sign
    return out


def open_counts(
    stays: Iterable[Mapping[Any, Any]], leads: Mapping[Any, Mapping[Any, Any]], sign: int = 1
) -> Counter[tuple[OpenKey, str]]:
    """The roll-up counts (``n``) and entry offsets (``since``) of the stays that never ended."""
    out: Counter[tuple[OpenKey, str]] = Counter()
    for stay in stays:
        if stay["exited_us"] < FOREVER:
            continue
        lead = leads.get(stay["lead_id"])
        entered = stay["entered_us"]
        day = day_of(entered)
        for dim, value in _lead_splits(lead):
            key = (dim, value, day, stay["stage"])
            out[(key, "n")] += sign
            out[(key, "since")] += sign * (entered - day * DAY_US)
    return out


def spanned(entered: int, exited: int) -> list[int]:
    """The bounds a stay that ended was open at: ``entered < b's midnight <= exited``.

    That is each bound day ``b`` with ``day_of(entered) < b <= day_of(exited)``.
    """
    return bounds_in(day_of(entered) + 1, day_of(exited))


def ended_counts(
    stays: Iterable[Mapping[Any, Any]], sign: int = 1
) -> Counter[tuple[EndedKey, str]]:
    """``rl_roll_ended``'s counts (``n``) and entry offsets (``since``) of the stays that ended.

    Each is counted at every bound it spans (:func:`spanned`).
    """
    out: Counter[tuple[EndedKey, str]] = Counter()
    for stay in stays:
        exited = stay["exited_us"]
        if exited >= FOREVER:
            continue
        entered, stage = stay["entered_us"], stay["stage"]
        day = day_of(entered)
        since = entered - day * DAY_US
        for bound in spanned(entered, exited):
            out[((bound, stage, day), "n")] += sign
            out[((bound, stage, day), "since")] += sign * since
    return out


def cohort_counts(
    by_lead: Mapping[str, Sequence[Stay]], leads: Mapping[Any, Mapping[Any, Any]], sign: int = 1
) -> Counter[tuple[CohortKey, str]]:
    """The cohort roll-up's counts of whole leads' current stays (:func:`lead_rows`)."""
    out: Counter[tuple[CohortKey, str]] = Counter()
    for lead_id, rows in by_lead.items():
        for key, measures in lead_cohorts(rows, _lead_splits(leads.get(lead_id))):
            for measure in measures:
                out[(key, COHORT_MEASURES[measure])] += sign
    return out


def _reach_measures(within: int, *, skipped: bool) -> tuple[int, ...]:
    """The positions in COHORT_MEASURES of a reach within the last ``within`` kept limits."""
    kept = len(COHORT_WITHIN)
    return (0, *range(1 + kept - within, 1 + kept), *((kept + 1,) if skipped else ()))


# a reach's measure positions, by how many of the kept limits it is within and whether skipped
_REACH_MEASURES = {
    (within, skipped): _reach_measures(within, skipped=skipped)
    for within in range(len(COHORT_WITHIN) + 1)
    for skipped in (False, True)
}
_MEMBER = (0,)
_LIMITS_US = [days * DAY_US for days in COHORT_WITHIN]


def lead_cohorts(
    rows: Sequence[Stay], splits: Sequence[tuple[str, str]]
) -> Iterator[tuple[CohortKey, tuple[int, ...]]]:
    """One lead's cohort entries: each key and the positions of the measures it adds one to.

    ``rows``: the lead's current stays as (entered, seq, stage, skipped, exited), in business
    order;
    ``splits``: the (dimension, value) pairs the lead counts under. Each entry into a source
    stage is a member row (target ``""``); its later stages are those reached by the stays
    entered at or after it, as cohort conversion tallies them.
    """
    entered = [row[0] for row in rows]
    before: dict[str, int] = {}  # source stage -> UTC day of the lead's latest entry so far
    for t0, _, source, _, _ in rows:
        targets = COHORT_TARGETS.get(source)
        if targets is None:
            continue
        day = day_of(t0)
        prev = before.get(source, NO_ENTRY)
        if prev < day - PREV_HORIZON:
            prev = NO_ENTRY
        before[source] = day
        for dim, value in splits:
            yield (dim, value, source, day, prev, ""), _MEMBER
        if len(rows) == 1:
            continue
        start = bisect.bisect_left(entered, t0)
        reached, direct = first_reaches((at, stage, skip) for at, _, stage, skip, _ in rows[start:])
        for target in targets:
            first = reached.get(target)
            if first is None:
                continue
            within = len(_LIMITS_US) - bisect.bisect_left(_LIMITS_US, first - t0)
            measures = _REACH_MEASURES[within, target not in direct]
            for dim, value in splits:
                yield (dim, value, source, day, prev, target), measures


def opp_counts(opps: Iterable[Mapping[Any, Any]], sign: int = 1) -> Counter[tuple[OppKey, str]]:
    """The roll-up counts (``n``) and amount units (``units``) of open opportunity rows."""
    out: Counter[tuple[OppKey, str]] = Counter()
    for opp in opps:
        if not opp["is_open"]:
            continue
        stage, currency, units = opp["stage"], opp["currency"], int(opp["amount_units"])
        for side, at in ((IN, opp["valid_from_us"]), (OUT, opp["valid_to_us"])):
            if side == OUT and at >= FOREVER:
                continue
            for grain, bucket in _grains(day_of(at)):
                key = (side, grain, bucket, stage, currency)
                out[(key, "n")] += sign
                out[(key, "units")] += sign * units
    return out


def deal_counts(
    deals: Iterable[Mapping[Any, Any]],
    closes: Iterable[Mapping[Any, Any]],
    channels: Mapping[str, str],
    sign: int = 1,
) -> Counter[tuple[DealKey, str]]:
    """The ``rl_roll_deal`` sums of ``deals`` (current rows) with their current ``closes``.

    ``channels``: each deal's deciding channel key (:mod:`projections.credit.decide`), kept
    with its opening and its won closes (the sourced report's milestones).
    """
    out: Counter[tuple[DealKey, str]] = Counter()
    by_deal: dict[str, list[Mapping[str, Any]]] = {}
    for close in closes:
        by_deal.setdefault(close["opportunity_id"], []).append(close)
    for deal in deals:
        opp, opened = deal["opportunity_id"], deal["opened_us"]
        opp_type, currency, channel = deal["opp_type"], deal["currency"], channels[opp]
        key: DealKey = ("opened", day_of(opened), NEVER, opp_type, currency, channel)
        out[(key, "n")] += sign
        amount_counts(out, key, deal["amount"], sign)
        listed = sorted(by_deal.get(opp, ()), key=itemgetter("seq"))
        for i, close in enumerate(listed):
            kind, at = close["kind"], close["at_us"]
            until = day_of(listed[i + 1]["at_us"]) if i + 1 < len(listed) else NEVER
            if kind == LOST:
                out[((LOST, day_of(at), until, opp_type, currency, ""), "n")] += sign
            elif kind == WON and close["amount"] is not None and close["currency"]:
                key = (WON, day_of(at), until, opp_type, close["currency"], channel)
                out[(key, "n")] += sign
                out[(key, "cycle")] += sign * (at - opened)
                amount_counts(out, key, close["amount"], sign)
    return out


def arr_counts(rows: Iterable[Mapping[Any, Any]], sign: int = 1) -> Counter[tuple[DealKey, str]]:
    """The ``rl_roll_deal`` sums of ARR movements (current ``rl_arr`` rows)."""
    out: Counter[tuple[DealKey, str]] = Counter()
    for row in rows:
        key = ("arr", day_of(row["at_us"]), NEVER, row["kind"], row["currency"], "")
        out[(key, "n")] += sign
        amount_counts(out, key, row["amount"], sign)
    return out


def _batches(values: Iterable[str]) -> Iterator[list[str]]:
    """The distinct ``values``, sorted, in lists short enough for one ``IN``."""
    listed = sorted(set(values))
    for start in range(0, len(listed), IN_QUERY):
        yield listed[start : start + IN_QUERY]


def _current(
    conn: sa.Connection, table: sa.Table, column: str, values: Iterable[str]
) -> list[sa.RowMapping]:
    """The current rows of ``table`` whose ``column`` is one of ``values``."""
    out: list[sa.RowMapping] = []
    for chunk in _batches(values):
        query = sa.select(table).where(table.c[column].in_(chunk), table.c.known_to == FOREVER)
        out.extend(conn.execute(query).mappings())
    return out


DECIDING_FIELDS = ("account_id", "captured_us", "lead_source", "first_touch_us", "first_channel")
TOUCH_FIELDS = ("source", "source_id", "at_us", "channel", "campaign_id", "touch_type")
Facts = tuple[tuple[Any, ...] | None, tuple[tuple[Any, ...], ...]]  # (contact fields, touches)


def _deciding_fields(contact: Mapping[Any, Any]) -> tuple[Any, ...]:
    """What of a lead's contact row a deal's deciding channel depends on (the account first)."""
    return tuple(contact[name] for name in DECIDING_FIELDS)


def _lead_facts(
    leads: Iterable[str],
    contacts: Iterable[Mapping[Any, Any]],
    touches: Iterable[Mapping[Any, Any]],
) -> dict[str, Facts]:
    """What deals' channels and credit read of each lead: its contact fields and its touches."""
    fields: dict[str, tuple[Any, ...]] = {row["lead_id"]: _deciding_fields(row) for row in contacts}
    found: dict[str, list[tuple[Any, ...]]] = {}
    for row in touches:
        found.setdefault(row["lead_id"], []).append(tuple(row[n] for n in TOUCH_FIELDS))
    return {
        lead: (fields.get(lead), tuple(sorted(found.get(lead, ()), key=repr))) for lead in leads
    }


MEASURE_AT = {measure: i for i, measure in enumerate(CREDIT_MEASURES)}


def _unpack(sums: bytes) -> Counts:
    """A deal's kept ``rl_deal_credit`` sums as counts."""
    out: Counts = Counter()
    for row in orjson.loads(sums):
        key = tuple(row[: len(CREDIT_KEY)])
        for measure, n in zip(CREDIT_MEASURES, row[len(CREDIT_KEY) :], strict=True):
            out[(key, measure)] += n
    return out


def _deal_credits(
    data: CreditData, closes: Iterable[Mapping[Any, Any]]
) -> Iterator[tuple[str, Counts]]:
    """Each of ``data``'s deals with its ``rl_roll_credit`` sums, given the deals' ``closes``."""
    by_deal: dict[str, list[Mapping[Any, Any]]] = {}
    for close in closes:
        by_deal.setdefault(close["opportunity_id"], []).append(close)
    for opp, deal in data.deals.items():
        yield opp, credit_counts(data, deal, by_deal.get(opp, ()))


def _pack(counts: Counts) -> bytes:
    """A deal's ``rl_roll_credit`` sums, as ``rl_deal_credit`` keeps them."""
    merged = _measured(counts, CREDIT_KEY, CREDIT_MEASURES)
    return orjson.dumps([[row[c] for c in (*CREDIT_KEY, *CREDIT_MEASURES)] for row in merged])


def stored_channels(conn: sa.Connection, t: Tables, deals: Iterable[str]) -> dict[str, str]:
    """The deciding channel keys kept in ``rl_deal_source`` for ``deals``."""
    source = t["deal_source"]
    query = sa.select(source.c.opportunity_id, source.c.channel)
    return {
        opp: key
        for chunk in _batches(deals)
        for opp, key in conn.execute(query.where(source.c.opportunity_id.in_(chunk)))
    }


@dataclass
class Delta:
    """The change one re-derivation makes to the roll-ups: old current rows out, new ones in."""

    stays: Counter[StayKey] = field(default_factory=Counter)
    opens: Counter[tuple[OpenKey, str]] = field(default_factory=Counter)
    ended: Counter[tuple[EndedKey, str]] = field(default_factory=Counter)
    cohorts: Counter[tuple[CohortKey, str]] = field(default_factory=Counter)
    durations: DurationDelta = field(default_factory=DurationDelta)
    opps: Counter[tuple[OppKey, str]] = field(default_factory=Counter)
    deals: Counter[tuple[DealKey, str]] = field(default_factory=Counter)
    credits: Counts = field(default_factory=Counter)
    rederived: set[str] = field(default_factory=set)  # opportunities re-derived
    # Re-derived leads' current contact fields and touches before and after, as compared tuples
    leads_before: dict[str, Facts] = field(default_factory=dict)
    leads_after: dict[str, Facts] = field(default_factory=dict)

    def retract(self, conn: sa.Connection, t: Tables, kind: str, subjects: Sequence[str]) -> None:
        """Subtract the current rows ``subjects`` have now (call before deleting them)."""
        if kind == "lead":
            stays = _current(conn, t["stay"], "lead_id", subjects)
            leads = _current(conn, t["lead"], "lead_id", subjects)
            by_lead = {row["lead_id"]: row for row in leads}
            self.stays.update(stay_counts(stays, by_lead, -1))
            self.opens.update(open_counts(stays, by_lead, -1))
            self.ended.update(ended_counts(stays, -1))
            grouped = lead_rows(stays)
            self.cohorts.update(cohort_counts(grouped, by_lead, -1))
            self.durations.update(grouped, by_lead, -1)
            contacts = _current(conn, t["contact"], "lead_id", subjects)
            touches = _current(conn, t["touch"], "lead_id", subjects)
            self.leads_before.update(_lead_facts(subjects, contacts, touches))
        elif kind == "opp":
            self.opps.update(opp_counts(_current(conn, t["opp"], "opportunity_id", subjects), -1))
            deals = _current(conn, t["deal"], "opportunity_id", subjects)
            closes = _current(conn, t["close"], "opportunity_id", subjects)
            channels = stored_channels(conn, t, subjects)
            self.deals.update(deal_counts(deals, closes, channels, -1))
            self.rederived.update(subjects)
        elif kind == "account":
            self.deals.update(arr_counts(_current(conn, t["arr"], "account_id", subjects), -1))

    def add(self, kind: str, rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        """Add the current rows among the freshly derived ``rows`` (table name -> row dicts)."""
        if kind == "lead":
            current = [r for r in rows.get("stay", ()) if r["known_to"] == FOREVER]
            leads = {r["lead_id"]: r for r in rows.get("lead", ()) if r["known_to"] == FOREVER}
            self.stays.update(stay_counts(current, leads))
            self.opens.update(open_counts(current, leads))
            self.ended.update(ended_counts(current))
            grouped = lead_rows(current)
            self.cohorts.update(cohort_counts(grouped, leads))
            self.durations.update(grouped, leads, 1)
            contacts = [r for r in rows.get("contact", ()) if r["known_to"] == FOREVER]
            touches = [r for r in rows.get("touch", ()) if r["known_to"] == FOREVER]
            known = {r["lead_id"] for r in (*contacts, *touches)}
            self.leads_after.update(_lead_facts(known, contacts, touches))
        elif kind == "opp":  # the deals' sums are added once every subject is current (_settle)
            self.opps.update(opp_counts(r for r in rows.get("opp", ()) if r["known_to"] == FOREVER))
        elif kind == "account":
            arr = (r for r in rows.get("arr", ()) if r["known_to"] == FOREVER)
            self.deals.update(arr_counts(arr))

    def _settle(self, conn: sa.Connection, t: Tables) -> None:
        """Add the re-derived deals' sums; move those whose deciding channel or credit changed.

        A deal's deciding channel and its credit depend on the leads of its account and the
        leads it names, so re-deriving a lead whose account, capture, lead source or touches
        changed can change the channel and the credit of deals that were not re-derived: those
        on the lead's old and new account and those naming it. Their sums move from the kept
        channel to the new one, and their kept credit is taken out and computed afresh.
        """
        source = t["deal_source"]
        # A lead whose contact fields and touches stayed the same cannot change any deal.
        empty: Facts = (None, ())
        leads = [
            lead
            for lead, before in self.leads_before.items()
            if before != self.leads_after.get(lead, empty)
        ]
        accounts = {
            fields[0]
            for lead in leads
            for fields, _ in (self.leads_before[lead], self.leads_after.get(lead, empty))
            if fields is not None and fields[0] is not None
        }
        others = {r["opportunity_id"] for r in _current(conn, t["deal"], "account_id", accounts)}
        others.update(r["opportunity_id"] for r in _current(conn, t["link"], "lead_id", leads))
        others -= self.rederived
        kept = stored_channels(conn, t, others)
        rows = _current(conn, t["deal"], "opportunity_id", self.rederived | others)
        data = deal_data(conn, t, [as_deal(row) for row in rows], touches=True)
        channels = channels_of(data)
        moved = {opp for opp in others if channels.get(opp) != kept.get(opp)}
        redecided = self.rederived | moved
        changed = [r for r in rows if r["opportunity_id"] in redecided]
        closes = _current(conn, t["close"], "opportunity_id", self.rederived | others)
        if moved:
            old = [r for r in rows if r["opportunity_id"] in moved]
            self.deals.update(deal_counts(old, closes, kept, -1))
        self.deals.update(deal_counts(changed, closes, channels))
        for chunk in _batches(redecided):
            conn.execute(sa.delete(source).where(source.c.opportunity_id.in_(chunk)))
        fresh = [
            {"opportunity_id": r["opportunity_id"], "channel": channels[r["opportunity_id"]]}
            for r in changed
        ]
        if fresh:
            conn.execute(sa.insert(source), fresh)
        self._recredit(conn, t, self.rederived | others, data, closes)
        self.rederived.clear()
        self.leads_before.clear()
        self.leads_after.clear()

    def _recredit(
        self,
        conn: sa.Connection,
        t: Tables,
        deals: set[str],
        data: CreditData,
        closes: Iterable[Mapping[Any, Any]],
    ) -> None:
        """Take ``deals``' kept credit out, and put the credit of the current ones (``data``) in."""
        stored = t["deal_credit"]
        for chunk in _batches(deals):
            query = sa.select(stored.c.sums).where(stored.c.opportunity_id.in_(chunk))
            for (sums,) in conn.execute(query):
                self.credits.subtract(_unpack(sums))
            conn.execute(sa.delete(stored).where(stored.c.opportunity_id.in_(chunk)))
        fresh = []
        for opp, counts in _deal_credits(data, closes):
            self.credits.update(counts)
            fresh.append({"opportunity_id": opp, "sums": _pack(counts)})
        if fresh:
            conn.execute(sa.insert(stored), fresh)

    def apply(self, conn: sa.Connection, t: Tables) -> None:
        """Write the net change (counts that did not cancel out) into the roll-up tables."""
        self._settle(conn, t)
        stays = [
            {**dict(zip(STAY_KEY, key, strict=True)), "n": n}
            for key, n in sorted(self.stays.items())
            if n
        ]
        opens = _measured(self.opens, OPEN_KEY, ("n", "since"))
        ended = _measured(self.ended, ENDED_KEY, ("n", "since"))
        cohorts = _measured(self.cohorts, COHORT_KEY, COHORT_MEASURES)
        opps = _measured(self.opps, OPP_KEY, ("n", "units"))
        deals = _measured(self.deals, DEAL_KEY, DEAL_MEASURES)
        credit = _measured(self.credits, CREDIT_KEY, CREDIT_MEASURES)
        if stays:
            _upsert(conn, t["roll_stay"], STAY_KEY, ("n",), stays)
        if opens:
            _upsert(conn, t["roll_open"], OPEN_KEY, ("n", "since"), opens)
        if ended:
            _upsert(conn, t["roll_ended"], ENDED_KEY, ("n", "since"), ended)
        if cohorts:
            _upsert(conn, t["roll_cohort"], COHORT_KEY, COHORT_MEASURES, cohorts)
        if opps:
            _upsert(conn, t["roll_opp"], OPP_KEY, ("n", "units"), opps)
        durations, gone, new = self.durations.rows()
        if durations:
            _upsert(conn, t["roll_dur"], DUR_KEY, DUR_MEASURES, durations)
        _replace_samples(conn, t["dur_sample"], gone, new)
        ranks.mark_stale(conn, t, ranks.sample_cells(gone + new))
        if deals:
            _upsert(conn, t["roll_deal"], DEAL_KEY, DEAL_MEASURES, deals)
        if credit:
            _upsert(conn, t["roll_credit"], CREDIT_KEY, CREDIT_MEASURES, credit)
        self.stays.clear()
        self.opens.clear()
        self.ended.clear()
        self.cohorts.clear()
        self.opps.clear()
        self.deals.clear()
        self.credits.clear()


def _measured(
    counts: Counter[tuple[Any, str]], key: Sequence[str], measures: Sequence[str]
) -> list[dict[str, Any]]:
    """Counts kept as ((key, measure) -> n) as rows of the key's columns and every measure."""
    merged: dict[Any, dict[str, int]] = {}
    for (values, measure), n in counts.items():
        merged.setdefault(values, dict.fromkeys(measures, 0))[measure] += n
    return [
        {**dict(zip(key, values, strict=True)), **sums}
        for values, sums in sorted(merged.items())
        if any(sums.values())
    ]


def _replace_samples(
    conn: sa.Connection, table: sa.Table, gone: list[tuple[Any, ...]], new: list[tuple[Any, ...]]
) -> None:
    """Delete the ``gone`` sample rows, then insert the ``new`` ones (keys in SAMPLE_KEY order)."""
    if gone:
        match = sa.delete(table).where(*(table.c[k] == sa.bindparam(f"k_{k}") for k in SAMPLE_KEY))
        conn.execute(
            match, [{f"k_{k}": v for k, v in zip(SAMPLE_KEY, key, strict=True)} for key in gone]
        )
    if new:
        conn.execute(sa.insert(table), [dict(zip(SAMPLE_KEY, key, strict=True)) for key in new])


def _upsert(
    conn: sa.Connection,
    table: sa.Table,
    key: Sequence[str],
    measures: Sequence[str],
    rows: list[dict[str, Any]],
) -> None:
    """Add ``rows``' measures to the existing rows with the same key (insert missing ones)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[k] for k in key],
        set_={m: table.c[m] + statement.excluded[m] for m in measures},
    )
    conn.execute(statement, rows)
    # A count back at zero leaves no row, as in a rebuild, which only groups existing rows.
    emptied = sa.delete(table).where(
        *(table.c[k] == sa.bindparam(f"k_{k}") for k in key), table.c[measures[0]] == 0
    )
    conn.execute(emptied, [{f"k_{k}": row[k] for k in key} for row in rows])


def build(conn: sa.Connection, t: Tables) -> None:
    """Fill the (empty) roll-up tables of ``t`` from its derived tables, in one process.

    The parts are independent: :func:`build_leads` fills the roll-ups kept per lead, and
    :func:`build_rest` the others (:data:`REST_TABLES`), so a rebuild can run them at once in two
    processes (:mod:`projections.build_split`).
    """
    build_leads(conn, t)
    build_rest(conn, t)


def build_leads(conn: sa.Connection, t: Tables) -> None:
    """Fill the roll-ups kept per lead (cohorts, durations, their ranks) from the stay table."""
    _build_per_lead(conn, t)
    ranks.build(conn, t)


def build_rest(conn: sa.Connection, t: Tables) -> None:
    """Fill the roll-ups of :data:`REST_TABLES` from the stays, opportunities and deals.

    One pass per side over the current stays in time order (constant memory: a day's counts are
    written when the next day starts), joined to each lead's current dimension row; month rows
    are summed alongside, and the entry pass counts the stays that never ended, and the bounds
    the others span (:func:`ended_counts`), as it goes: every key holds its day of entry, so a
    day's are complete when the next starts.
    """
    stay, lead = t["stay"], t["lead"]
    joined = stay.outerjoin(
        lead, sa.and_(lead.c.lead_id == stay.c.lead_id, lead.c.known_to == FOREVER)
    )
    dims = [lead.c[d] for d in BY_FIELDS]
    writer = _Writer(conn, t["roll_stay"], STAY_KEY, ("n",))
    entries = _EntryDay(conn, t)
    months: Counter[StayKey] = Counter()
    for side, at, extra in (
        (IN, stay.c.entered_us, sa.true()),
        (OUT, stay.c.exited_us, stay.c.exited_us < FOREVER),
    ):
        query = (
            sa.select(
                at,
                stay.c.exited_us,
                stay.c.prev_stage,
                stay.c.stage,
                stay.c.move,
                stay.c.reentry,
                lead.c.lead_id,
                *dims,
            )
            .select_from(joined)
            .where(stay.c.known_to == FOREVER, extra)
            .order_by(at)
        )
        today: Counter[StayKey] = Counter()
        current = None
        for row in conn.execute(query.execution_options(yield_per=10_000)):
            day = day_of(row[0])
            if day != current:
                _close_day(today, months, writer)
                entries.close()
                current = day
            if side == IN:
                detail = (row[2] or "", row[3], row[4], bool(row[5]))
            else:
                detail = ("", row[3], "", False)
            groups = _splits(None if row[6] is None else row[7:])
            for dim, group in groups:
                today[(dim, group, side, DAY, day, *detail)] += 1
            if side == IN:
                entries.add(row[0], row[1], row[3], groups)
        _close_day(today, months, writer)
        entries.close()
    writer.add(months)
    writer.flush()
    entries.flush()
    opp = t["opp"]
    query = sa.select(opp).where(opp.c.known_to == FOREVER, opp.c.is_open.is_(True))
    opps = conn.execute(query.execution_options(yield_per=10_000)).mappings()  # not held whole
    merged = _measured(opp_counts(opps), OPP_KEY, ("n", "units"))
    if merged:
        conn.execute(sa.insert(t["roll_opp"]), merged)
    _build_deals(conn, t)


def _build_deals(conn: sa.Connection, t: Tables) -> None:
    """Fill ``rl_roll_deal`` from the current deals, their closes, and the ARR movements.

    The closes are read in deal order, a deal at a time (constant memory).
    """
    deal, close, arr = t["deal"], t["close"], t["arr"]
    joined = deal.outerjoin(
        close,
        sa.and_(close.c.opportunity_id == deal.c.opportunity_id, close.c.known_to == FOREVER),
    )
    columns = [deal.c[n] for n in ("opportunity_id", "opp_type", "opened_us", "currency", "amount")]
    closes = [close.c.seq, close.c.at_us, close.c.kind, close.c.amount, close.c.currency]
    query = (
        sa.select(*columns, *(c.label(f"close_{c.name}") for c in closes))
        .select_from(joined)
        .where(deal.c.known_to == FOREVER)
        .order_by(deal.c.opportunity_id, close.c.seq)
    )
    channels = _build_channels(conn, t)
    counts: Counter[tuple[DealKey, str]] = Counter()
    rows = conn.execute(query.execution_options(yield_per=10_000)).mappings()
    for _, group in groupby(rows, key=itemgetter("opportunity_id")):
        listed = list(group)
        found = [
            {name: row[f"close_{name}"] for name in ("seq", "at_us", "kind", "amount", "currency")}
            | {"opportunity_id": row["opportunity_id"]}
            for row in listed
            if row["close_seq"] is not None
        ]
        counts.update(deal_counts(listed[:1], found, channels))
    query = sa.select(arr.c.at_us, arr.c.kind, arr.c.amount, arr.c.currency)
    query = query.where(arr.c.known_to == FOREVER).execution_options(yield_per=10_000)
    current = conn.execute(query)
    counts.update(arr_counts(current.mappings()))
    merged = _measured(counts, DEAL_KEY, DEAL_MEASURES)
    if merged:
        conn.execute(sa.insert(t["roll_deal"]), merged)


def _build_channels(conn: sa.Connection, t: Tables) -> dict[str, str]:
    """Fill ``rl_deal_source``, ``rl_deal_credit`` and ``rl_roll_credit`` from the current deals.

    The deals are taken in account order, some thousands at a time, so each batch reads the
    contacts and touches of its accounts once. Returns every deal's deciding channel key.
    """
    deal = t["deal"]
    query = (
        sa.select(deal)
        .where(deal.c.known_to == FOREVER)
        .order_by(deal.c.account_id, deal.c.opportunity_id)
        .execution_options(yield_per=5_000)
    )
    channels: dict[str, str] = {}
    sums: dict[tuple[Any, ...], list[int]] = {}
    for batch in conn.execute(query).mappings().partitions():
        data = deal_data(conn, t, [as_deal(row) for row in batch], touches=True)
        found = channels_of(data)
        channels.update(found)
        conn.execute(
            sa.insert(t["deal_source"]),
            [{"opportunity_id": opp, "channel": key} for opp, key in found.items()],
        )
        closes = _current(conn, t["close"], "opportunity_id", found)
        kept = []
        for opp, counts in _deal_credits(data, closes):
            for (key, measure), n in counts.items():
                sums.setdefault(key, [0] * len(CREDIT_MEASURES))[MEASURE_AT[measure]] += n
            kept.append({"opportunity_id": opp, "sums": _pack(counts)})
        conn.execute(sa.insert(t["deal_credit"]), kept)
    rows = [
        dict(zip((*CREDIT_KEY, *CREDIT_MEASURES), (*key, *values), strict=True))
        for key, values in sorted(sums.items())
    ]
    if rows:
        conn.execute(sa.insert(t["roll_credit"]), rows)
    return channels


def _build_per_lead(conn: sa.Connection, t: Tables) -> None:
    """Fill the roll-ups kept per lead from the current stays, a lead at a time.

    They are ``rl_roll_cohort`` (:func:`lead_cohorts`) and ``rl_dur_sample``
    (:func:`~projections.durations.lead_durations`), whose index is built once it is loaded and
    from which ``rl_roll_dur`` is then summed (:func:`_build_durations`).

    The cohort sums are held by key, and added to the table's rows every
    :data:`COHORT_FLUSH_KEYS` keys, so memory stays bounded whatever the number of keys.
    """
    stay, lead = t["stay"], t["lead"]
    joined = stay.outerjoin(
        lead, sa.and_(lead.c.lead_id == stay.c.lead_id, lead.c.known_to == FOREVER)
    )
    columns = (stay.c.entered_us, stay.c.seq, stay.c.stage, stay.c.skipped)
    query = (
        sa.select(
            stay.c.exited_us,
            stay.c.lead_id,
            *columns,
            lead.c.lead_id,
            *(lead.c[d] for d in BY_FIELDS),
            lead.c.first_contact_us,
        )
        .select_from(joined)
        .where(stay.c.known_to == FOREVER)
        .order_by(stay.c.lead_id, stay.c.entered_us, stay.c.seq)
    )
    sums: dict[CohortKey, list[int]] = {}
    writer = _Writer(conn, t["roll_cohort"], COHORT_KEY, COHORT_MEASURES, adding=True)
    samples = _Writer(conn, t["dur_sample"], SAMPLE_KEY, ())
    rows = conn.execute(query.execution_options(yield_per=10_000))
    for lead_id, group in groupby(rows, key=itemgetter(1)):
        stays = list(group)
        first = stays[0]
        splits = _splits(None if first[6] is None else first[7:-1])
        current = [(row[2], row[3], row[4], row[5], row[0]) for row in stays]
        samples.add_rows(sample_keys(lead_durations(current, first[-1]), lead_id))
        for key, measures in lead_cohorts(current, splits):
            counts = sums.get(key)
            if counts is None:
                counts = sums[key] = [0] * len(COHORT_MEASURES)
            for measure in measures:
                counts[measure] += 1
        if len(sums) >= COHORT_FLUSH_KEYS:
            writer.add_rows((*key, *counts) for key, counts in sums.items())
            writer.flush()
            sums.clear()
    writer.add_rows((*key, *counts) for key, counts in sums.items())
    writer.flush()
    samples.flush()
    build_bulk.create_indexes(conn, t, INDEXED_WHEN_FILLED)
    _build_durations(conn, t)


def _build_durations(conn: sa.Connection, t: Tables) -> None:
    """Fill ``rl_roll_dur`` from ``rl_dur_sample``: one grouped insert per grain.

    The same sums as :func:`~projections.durations.add_sums` (which keeps them current),
    computed by the database: adding each lead's into the table as it comes costs a random
    B-tree update per key. Days and months are summed from the durations, weeks and quarters
    from those rows (:func:`_add_weeks`, :func:`_add_quarters`).
    """
    sample, roll = t["dur_sample"], t["roll_dur"]
    for grain, at in ((DAY, sample.c.day), (MONTH, sample.c.month)):
        keys = (at, sample.c.measure, sample.c.key, sample.c.bucket)
        query = (
            sa.select(sa.literal(grain), *keys)
            .add_columns(sa.func.count(), sa.func.sum(sample.c.duration_us))
            .group_by(*keys)
        )
        conn.execute(sa.insert(roll).from_select(DUR_COLUMNS, query))
    _add_weeks(conn, roll)
    _add_quarters(conn, roll)


def _add_weeks(conn: sa.Connection, roll: sa.Table) -> None:
    """Sum ``rl_roll_dur``'s day rows into its week rows, keyed by their Mondays (in SQL)."""
    monday = roll.c.day - ((roll.c.day - MONDAY) % 7 + 7) % 7  # both databases' % keeps the sign
    keys = (monday, roll.c.measure, roll.c.key, roll.c.bucket)
    query = (
        sa.select(sa.literal(WEEK), *keys)
        .add_columns(sa.func.sum(roll.c.n), sa.func.sum(roll.c.total))
        .where(roll.c.grain == DAY)
        .group_by(*keys)
    )
    conn.execute(sa.insert(roll).from_select(DUR_COLUMNS, query))


def _add_quarters(conn: sa.Connection, roll: sa.Table) -> None:
    """Sum ``rl_roll_dur``'s month rows into its quarter rows (a few thousand rows at 10M).

    In Python: a quarter's first day is a calendar computation, and the month rows are few.
    """
    month = sa.select(*(roll.c[c] for c in ("day", "measure", "key", "bucket", "n", "total")))
    sums: dict[tuple[int, str, str, int], list[int]] = {}
    for day, measure, key, bucket, n, total in conn.execute(month.where(roll.c.grain == MONTH)):
        cell = sums.setdefault((quarter_of(day), measure, key, bucket), [0, 0])
        cell[0] += n
        cell[1] += total
    rows = [
        dict(zip(DUR_COLUMNS, (QUARTER, *key, n, total), strict=True))
        for key, (n, total) in sums.items()
    ]
    if rows:
        conn.execute(sa.insert(roll), rows)


def holds_grain(conn: sa.Connection, table: sa.Table, grain: str) -> bool:
    """Whether the roll-up ``table`` (keyed by grain first) has a row of ``grain``.

    Ordered by the key, so that PostgreSQL reads the key's index: a sequential scan for the
    first row (its estimate for a common grain) reads every row stored before it.
    """
    query = sa.select(table.c.grain).where(table.c.grain == grain)
    return conn.execute(query.order_by(*table.primary_key.columns).limit(1)).first() is not None


def add_missing_grains(conn: sa.Connection, t: Tables) -> None:
    """Sum the grains of ``rl_roll_dur`` a build before them left out from those it has.

    Every build since writes them all, so a table with day rows and no week row is an older
    build's, whose day rows sum to its weeks, and likewise its month rows to its quarters.
    """
    roll = t["roll_dur"]
    for grain, coarser, add in ((DAY, WEEK, _add_weeks), (MONTH, QUARTER, _add_quarters)):
        if holds_grain(conn, roll, grain) and not holds_grain(conn, roll, coarser):
            add(conn, roll)


def _close_day(today: Counter[StayKey], months: Counter[StayKey], writer: _Writer) -> None:
    """Write one day's counts and add them to their month's."""
    for (dim, value, side, _, day, prev, stage, move, reentry), n in today.items():
        months[(dim, value, side, MONTH, month_of(day), prev, stage, move, reentry)] += n
    writer.add(today)
    today.clear()


class _EntryDay:
    """One UTC day's entries, as the build's entry pass meets them, for two roll-ups.

    ``rl_roll_open`` counts those that never ended (per split), ``rl_roll_ended`` the bounds the
    others span (:func:`ended_counts`). Every key holds the day of entry, so a day's rows are
    complete, and written, when the next day starts (:meth:`close`).
    """

    def __init__(self, conn: sa.Connection, t: Tables) -> None:
        """Writers for both tables of ``t``."""
        self.opens = _Writer(conn, t["roll_open"], OPEN_KEY, ("n", "since"))
        self.ended = _Writer(conn, t["roll_ended"], ENDED_KEY, ("n", "since"))
        self.still: dict[OpenKey, list[int]] = {}  # the stays that never ended: [n, since]
        self.spans: dict[EndedKey, list[int]] = {}  # the stays that ended, per bound

    def add(self, entered: int, exited: int, stage: str, groups: list[tuple[str, str]]) -> None:
        """Count one stay (of this day), under its splits ``groups`` when it never ended."""
        day = day_of(entered)
        offset = entered - day * DAY_US
        if exited >= FOREVER:
            keys: Iterable[Any] = ((dim, group, day, stage) for dim, group in groups)
            counts: dict[Any, list[int]] = self.still
        else:
            keys = ((bound, stage, day) for bound in spanned(entered, exited))
            counts = self.spans
        for key in keys:
            sums = counts.setdefault(key, [0, 0])
            sums[0] += 1
            sums[1] += offset

    def close(self) -> None:
        """Queue the day's rows."""
        self.opens.add_rows((*key, *sums) for key, sums in self.still.items())
        self.ended.add_rows((*key, *sums) for key, sums in self.spans.items())
        self.still.clear()
        self.spans.clear()

    def flush(self) -> None:
        """Insert what is queued."""
        self.opens.flush()
        self.ended.flush()


class _Writer:
    """Buffers roll-up rows and inserts them in large batches.

    SQLite: the driver's ``executemany``. PostgreSQL: ``COPY`` (one statement per row costs the
    server more than the build's Python work); rows summed into existing ones (``adding``) are
    copied into a temporary table first, then added by one ``INSERT … ON CONFLICT``.
    """

    def __init__(
        self,
        conn: sa.Connection,
        table: sa.Table,
        key: Sequence[str],
        measures: Sequence[str],
        *,
        adding: bool = False,
    ) -> None:
        """Rows of ``key`` and ``measures`` for ``table``; ``adding``: summed into existing rows."""
        self.conn = conn
        self.table = table
        self.columns = [*key, *measures]
        self.copying = conn.dialect.name == "postgresql"
        quote = conn.dialect.identifier_preparer
        names = ", ".join(quote.quote(c) for c in self.columns)
        self.stage: sa.Table | None = None
        if self.copying and adding:
            self.stage = sa.Table(
                f"rl_adding_{table.name}",
                sa.MetaData(),
                prefixes=["TEMPORARY"],
                postgresql_on_commit="DROP",
            )
            for column in table.columns:
                self.stage.append_column(sa.Column(column.name, column.type))
            self.stage.create(conn)
            source = f"SELECT {names} FROM {quote.format_table(self.stage)}"  # noqa: S608
        else:
            source = f"VALUES ({', '.join([driver_mark(conn.dialect)] * len(self.columns))})"
        self.statement = f"INSERT INTO {quote.format_table(table)} AS t ({names}) {source}"
        if adding:
            sums = ", ".join(
                f"{quote.quote(m)} = t.{quote.quote(m)} + excluded.{quote.quote(m)}"
                for m in measures
            )
            self.statement += (
                f" ON CONFLICT ({', '.join(quote.quote(k) for k in key)}) DO UPDATE SET {sums}"
            )
        self.rows: list[tuple[Any, ...]] = []

    def add(self, counts: Counter[StayKey]) -> None:
        """Queue one row per key of ``counts``."""
        self.add_rows((*key, n) for key, n in counts.items())

    def add_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Queue rows of every key column and measure, in the table's order."""
        self.rows.extend(rows)
        if len(self.rows) >= WRITER_ROWS:
            self.flush()

    def flush(self) -> None:
        """Insert what is queued (with ``adding``, rows of distinct keys only)."""
        if not self.rows:
            return
        if self.stage is not None:
            build_bulk.copy_rows(self.conn, self.stage, self.columns, self.rows)
            self.conn.exec_driver_sql(self.statement)
            self.conn.exec_driver_sql(f"TRUNCATE {self.stage.name}")
        elif self.copying:
            build_bulk.copy_rows(self.conn, self.table, self.columns, self.rows)
        else:
            cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.executemany(self.statement, self.rows)
            cursor.close()
        self.rows = []
