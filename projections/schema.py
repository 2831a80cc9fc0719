"""The projection tables (SQLAlchemy Core), living in the ledger's own database.

Every time is an integer of microseconds since the epoch (business time: ``*_us``; ledger time:
``known_from``/``known_to``); open intervals end at ``FOREVER``. This keeps comparisons and
durations identical on SQLite and PostgreSQL. ``rebuild`` creates the same tables with the
``__shadow`` suffix and renames them over the live ones in one transaction; index names carry
the build's generation number so a shadow's indexes never collide with the live ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, LargeBinary, String

from ledger.storage import LEDGER_EVENTS
from projections.credit.tables import CREDIT_TABLES, define_credit_tables

SHADOW = "__shadow"
# A 64-bit integer key; on SQLite declared INTEGER, which makes it the table's rowid.
ROWID = BigInteger().with_variant(Integer(), "sqlite")
DERIVED = ("stay", "lead", "anomaly", "handoff", "accept", "opp", *CREDIT_TABLES)
# per-day aggregates: projections.rollup
ROLLUPS = (
    "roll_stay",
    "roll_opp",
    "roll_open",
    "roll_ended",
    "roll_cohort",
    "roll_dur",
    "dur_sample",
    "roll_rank",
    "roll_deal",
    "deal_source",
    "roll_credit",
    "deal_credit",
)
# rl_roll_deal's sums: count, amount in ten-thousandths, cycle (close - opened, microseconds),
# amounts finer than a ten-thousandth, and amounts with 1, 2, 3 and 4 decimal places.
DEAL_MEASURES = ("n", "units", "cycle", "odd", "d1", "d2", "d3", "d4")
# rl_roll_cohort: the --within days whose counts it keeps (any other reads the stay table)
COHORT_WITHIN = (7, 14, 30, 60, 90, 180, 365)
# rl_roll_cohort's sums: members (target "") or members that reached the target, of those how
# many within each kept number of days, and how many only by skipping it.
COHORT_MEASURES = ("n", *(f"w{days}" for days in COHORT_WITHIN), "skip")
# rl_roll_credit's sums: deals credited, touches credited (untouched deals, in ``total`` rows),
# then the amount as in DEAL_MEASURES.
CREDIT_MEASURES = ("deals", "touches", "units", "odd", "d1", "d2", "d3", "d4")
TABLES = ("fact", "family", *DERIVED, *ROLLUPS)
# Roll-ups a catch-up creates and fills when an older build lacks them (Projection._prepare);
# until then the reports do without them.
LATER = ("roll_rank",)
# Roll-ups that reports read in ranges of their key: on SQLite, stored in key order
# (WITHOUT ROWID), so a range is read in one pass rather than a row lookup per key; on
# PostgreSQL, the key's index includes the other columns, so a range is an index-only scan in
# key order (the rebuild vacuums the tables it loads) rather than a heap page per row and a sort.
CLUSTERED = tuple(name for name in ROLLUPS if name.startswith("roll_"))


def _known() -> list[Column[int]]:
    """Ledger-time span of a derived row (part of its key: a row can be known twice)."""
    return [
        Column("known_from", BigInteger, primary_key=True),
        Column("known_to", BigInteger, nullable=False),
    ]


def _define(metadata: sa.MetaData, suffix: str, gen: int) -> dict[str, sa.Table]:
    def name(table: str) -> str:
        return f"rl_{table}{suffix}"

    def ix(table: str, *columns: str, unique: bool = False) -> Index:
        return Index(f"rl_{table}_g{gen}_{'_'.join(columns)}", *columns, unique=unique)

    text, big = String, BigInteger
    defined = {
        # Keyed by what a rebuild writes in order (the ledger's position; a subject), not by
        # the facts' random ids, whose B-trees a load of millions of rows visits page by page
        # at random; the ids' indexes are built after the load (projections.build_scan).
        "fact": sa.Table(
            name("fact"),
            metadata,
            Column("fact_id", String(32), nullable=False),
            Column("root_id", String(32), nullable=False),
            Column("recorded_us", big, nullable=False),
            # business time, as the fact states it (projections.corrections.stated_us)
            Column("occurred_us", big),
            Column("topic", text, nullable=False),
            # the ledger's notification id (on SQLite, the table's own rowid)
            Column("position", ROWID, primary_key=True, autoincrement=False),
            ix("fact", "fact_id", unique=True),
            ix("fact", "root_id"),
            # the facts of some types that occurred in a span (LeadHistories.active)
            ix("fact", "topic", "occurred_us"),
        ),
        "family": sa.Table(
            name("family"),
            metadata,
            Column("root_id", String(32), nullable=False),
            Column("kind", String(8), nullable=False),
            Column("subject", text, nullable=False),
            sa.PrimaryKeyConstraint("kind", "subject", "root_id"),
            ix("family", "root_id"),
            sqlite_with_rowid=False,
        ),
        "stay": sa.Table(
            name("stay"),
            metadata,
            Column("lead_id", text, primary_key=True),
            Column("seq", Integer, primary_key=True),
            Column("stage", text, nullable=False),
            Column("entered_us", big, nullable=False),
            Column("exited_us", big, nullable=False),
            Column("prev_stage", text),
            Column("next_stage", text),
            Column("move", String(8), nullable=False),
            Column("skipped", text, nullable=False),
            Column("reentry", Boolean, nullable=False),
            *_known(),
            # with the exit, it answers velocity's "entered on a day, open at an end" by itself
            ix("stay", "known_to", "stage", "entered_us", "exited_us"),
            ix("stay", "known_to", "stage", "exited_us"),
            ix("stay", "known_to", "entered_us"),
            ix("stay", "known_to", "lead_id", "entered_us"),
            ix("stay", "known_to", "exited_us"),
        ),
        "lead": sa.Table(
            name("lead"),
            metadata,
            Column("lead_id", text, primary_key=True),
            Column("first_contact_us", big),
            Column("lead_source", text),
            Column("segment", text),
            Column("country", text),
            Column("owner", text),
            Column("channel", text),
            *_known(),
            ix("lead", "known_to", "lead_id"),
        ),
        "anomaly": sa.Table(
            name("anomaly"),
            metadata,
            Column("lead_id", text, primary_key=True),
            Column("seq", Integer, primary_key=True),
            Column("at_us", big, nullable=False),
            Column("kind", String(24), nullable=False),
            Column("stage", text),
            Column("detail", text, nullable=False),
            Column("source", text),
            Column("source_id", text),
            *_known(),
            # covering: the report reads every column in (time) order from the index alone
            Index(
                f"rl_anomaly_g{gen}_report",
                *("known_to", "at_us", "lead_id", "seq", "kind", "stage", "detail"),
                *("source", "source_id"),
            ),
        ),
        # each hand-off with what followed it and its neighbours (projections/leads.py), and
        # each acceptance with its neighbours: what audit reconcile and sla read
        "handoff": sa.Table(
            name("handoff"),
            metadata,
            Column("lead_id", text, primary_key=True),
            Column("seq", Integer, primary_key=True),
            Column("at_us", big, nullable=False),
            Column("month", Integer, nullable=False),  # first UTC day of at_us's UTC month
            Column("day", Integer, nullable=False),  # at_us's UTC day
            Column("prev_us", big),  # the lead's previous hand-off
            Column("team", text),
            Column("to_owner", text, nullable=False),
            Column("acted_us", big),  # the first sales activity at or after it
            Column("delay_us", big),  # acted_us - at_us
            Column("duplicate", Boolean, nullable=False),  # rejected/disqualified as one, after
            Column("rejected", text),  # the first rejection's reason, after
            Column("disqualified", Boolean, nullable=False),  # after
            Column("recycled", Boolean, nullable=False),  # after
            Column("accepted_before_us", big),  # the last acceptance before it
            Column("accepted_from_us", big),  # the first acceptance at or after it
            Column("accepted_last_us", big),  # the lead's last acceptance
            *_known(),
            ix("handoff", "known_to", "at_us"),
            # audit sla: a month's (by month or quarter), a day's (by day or week) hand-offs per
            # owner in delay order
            ix("handoff", "known_to", "month", "team", "to_owner", "delay_us", "at_us"),
            ix("handoff", "known_to", "day", "team", "to_owner", "delay_us", "at_us"),
        ),
        "accept": sa.Table(
            name("accept"),
            metadata,
            Column("lead_id", text, primary_key=True),
            Column("seq", Integer, primary_key=True),
            Column("at_us", big, nullable=False),
            Column("prev_us", big),  # the lead's previous acceptance
            Column("handed_before_us", big),  # the last hand-off before it
            Column("handed_from_us", big),  # the first hand-off at or after it
            *_known(),
            ix("accept", "known_to", "at_us"),
        ),
        "opp": sa.Table(
            name("opp"),
            metadata,
            Column("opportunity_id", text, primary_key=True),
            Column("seq", Integer, primary_key=True),
            Column("stage", text, nullable=False),
            Column("amount_units", big, nullable=False),
            Column("currency", String(3), nullable=False),
            Column("is_open", Boolean, nullable=False),
            Column("valid_from_us", big, nullable=False),
            Column("valid_to_us", big, nullable=False),
            *_known(),
            ix("opp", "known_to", "valid_from_us"),
        ),
        "roll_stay": sa.Table(
            name("roll_stay"),
            metadata,
            Column("dim", String(16), primary_key=True),
            Column("grain", String(1), primary_key=True),
            Column("day", Integer, primary_key=True),
            Column("side", String(3), primary_key=True),
            Column("value", text, primary_key=True),
            Column("prev", text, primary_key=True),
            Column("stage", text, primary_key=True),
            Column("move", String(8), primary_key=True),
            Column("reentry", Boolean, primary_key=True),
            Column("n", big, nullable=False),
        ),
        "roll_opp": sa.Table(
            name("roll_opp"),
            metadata,
            Column("grain", String(1), primary_key=True),
            Column("day", Integer, primary_key=True),
            Column("side", String(3), primary_key=True),
            Column("stage", text, primary_key=True),
            Column("currency", String(3), primary_key=True),
            Column("n", big, nullable=False),
            Column("units", big, nullable=False),
        ),
        "roll_open": sa.Table(
            name("roll_open"),
            metadata,
            Column("dim", String(16), primary_key=True),
            Column("value", text, primary_key=True),
            Column("stage", text, primary_key=True),
            Column("day", Integer, primary_key=True),
            Column("n", big, nullable=False),
            Column("since", big, nullable=False),  # sum of (entered_us - day start)
        ),
        "roll_ended": sa.Table(  # the stays that ended, open at each bound (rollup.ended_counts)
            name("roll_ended"),
            metadata,
            # key in this order: a bound's rows of one stage are one range, by day of entry
            Column("bound", Integer, primary_key=True),  # UTC day: a month's first or a Monday
            Column("stage", text, primary_key=True),
            Column("day", Integer, primary_key=True),  # UTC day of entry
            Column("n", big, nullable=False),
            Column("since", big, nullable=False),  # sum of (entered_us - day start)
        ),
        "roll_cohort": sa.Table(  # cohort conversion's entries (rollup.cohort_counts)
            name("roll_cohort"),
            metadata,
            # key in this order: a period's rows of one split are one range per source stage
            Column("dim", String(16), primary_key=True),
            Column("source", text, primary_key=True),  # the stage entered
            Column("day", Integer, primary_key=True),  # UTC day of the entry
            Column("value", text, primary_key=True),
            Column("prev", Integer, primary_key=True),  # day of the lead's entry before (or -2**31)
            Column("target", text, primary_key=True),  # a later stage ("" for the members)
            *(Column(m, big, nullable=False) for m in COHORT_MEASURES),
        ),
        "roll_dur": sa.Table(  # velocity's duration histograms (projections/durations.py)
            name("roll_dur"),
            metadata,
            # key in this order: a period's rows of one grain are one range
            Column("grain", String(1), primary_key=True),
            Column("day", Integer, primary_key=True),  # UTC day (or month's first) of the end
            Column("measure", String(16), primary_key=True),
            Column("key", text, primary_key=True),  # the stage, lag or "won"
            Column("bucket", Integer, primary_key=True),  # durations.bucket_of
            Column("n", big, nullable=False),
            Column("total", big, nullable=False),  # sum of the durations, microseconds
        ),
        # per cell of rl_roll_dur (grain, day, measure, key): the count, the sum and the
        # nearest-rank median's and p90's durations; NULL measures: stale (projections/ranks.py)
        "roll_rank": sa.Table(
            name("roll_rank"),
            metadata,
            Column("grain", String(1), primary_key=True),
            Column("day", Integer, primary_key=True),
            Column("measure", String(16), primary_key=True),
            Column("key", text, primary_key=True),
            Column("n", big),
            Column("total", big),
            Column("median_us", big),
            Column("p90_us", big),
            Index(  # the stale rows, which a catch-up looks for when it is done
                f"rl_roll_rank_g{gen}_stale",
                "grain",
                "day",
                "measure",
                "key",
                sqlite_where=sa.text("median_us IS NULL"),
                postgresql_where=sa.text("median_us IS NULL"),
            ),
        ),
        # every duration rl_roll_dur counts, to find one by rank; a rebuild appends them and
        # builds the index after (rollup.build), and aggregates rl_roll_dur from them
        "dur_sample": sa.Table(
            name("dur_sample"),
            metadata,
            Column("measure", String(16), nullable=False),
            Column("key", text, nullable=False),
            Column("bucket", Integer, nullable=False),
            Column("day", Integer, nullable=False),  # UTC day of the exit or first reach
            Column("duration_us", big, nullable=False),
            Column("lead_id", text, nullable=False),
            Column("seq", Integer, nullable=False),  # the stay's (time in stage), else 0
            Column("month", Integer, nullable=False),  # the first day of the day's UTC month
            ix("dur_sample", "measure", "key", "bucket", "day", "duration_us"),
            ix("dur_sample", "measure", "key", "bucket", "month", "duration_us"),
        ),
        "roll_deal": sa.Table(
            name("roll_deal"),
            metadata,
            Column("what", String(8), primary_key=True),  # opened | won | lost | arr
            Column("day", Integer, primary_key=True),
            Column("until", Integer, primary_key=True),  # day of the next close (closes)
            Column("type", String(16), primary_key=True),  # opportunity type, or ARR kind
            Column("currency", String(3), primary_key=True),
            Column("channel", text, primary_key=True),  # deciding channel key (opened, won)
            *(Column(m, big, nullable=False) for m in DEAL_MEASURES),
        ),
        "deal_source": sa.Table(  # each current deal's deciding channel key (credit/decide.py)
            name("deal_source"),
            metadata,
            Column("opportunity_id", text, primary_key=True),
            Column("channel", text, nullable=False),
        ),
        "roll_credit": sa.Table(  # credit under the default model (credit/kept.py)
            name("roll_credit"),
            metadata,
            Column("metric", String(8), primary_key=True),  # pipeline | revenue | deals
            Column("split", String(8), primary_key=True),  # campaign | channel | total
            Column("day", Integer, primary_key=True),  # of the milestone
            Column("until", Integer, primary_key=True),  # day of the next close (revenue)
            Column("type", String(16), primary_key=True),  # opportunity type
            Column("currency", String(3), primary_key=True),  # "" for deals
            Column("key", text, primary_key=True),  # campaign id or channel ("" in total)
            *(Column(m, big, nullable=False) for m in CREDIT_MEASURES),
        ),
        "deal_credit": sa.Table(  # each current deal's rl_roll_credit sums, to retract them
            name("deal_credit"),
            metadata,
            Column("opportunity_id", text, primary_key=True),
            Column("sums", LargeBinary, nullable=False),  # orjson: [[key..., measures...]]
        ),
        **define_credit_tables(metadata, name, ix, _known),
    }
    for clustered in CLUSTERED:
        table = defined[clustered]
        table.dialect_kwargs["sqlite_with_rowid"] = False
        measures = [column.name for column in table.columns if not column.primary_key]
        table.primary_key.dialect_kwargs["postgresql_include"] = measures
    return defined


@dataclass(frozen=True)
class Tables:
    """One complete set of projection tables (the live set, or a shadow being built)."""

    metadata: sa.MetaData
    by_name: dict[str, sa.Table]

    def __getitem__(self, name: str) -> sa.Table:
        """The table called ``name`` (fact, family, stay, lead, anomaly, opp, or a credit table)."""
        return self.by_name[name]

    def stored(self, dialect: str) -> tuple[sa.TableClause, sa.ColumnClause[int]]:
        """The ledger's events table (with its ``state`` column) and its position column.

        ``rl_fact`` names each fact's stored event by its ``position`` (the ledger's notification
        id) rather than keeping a copy of its bytes: a query joins ``rl_fact.position`` to the
        position column returned here. The ledger lives in the same database and schema.
        """
        if dialect == "postgresql":
            name, position = LEDGER_EVENTS["postgres"], "notification_id"
        else:
            name, position = LEDGER_EVENTS["sqlite"], "rowid"  # SQLite: the notification id
        column = sa.column(position, BigInteger)
        events = sa.table(name, column, sa.column("state"), schema=self.metadata.schema)
        return events, column


def tables(schema: str | None, *, shadow: bool = False, generation: int = 0) -> Tables:
    """The live (or shadow) tables in ``schema`` (None: the database's default schema)."""
    metadata = sa.MetaData(schema=schema)
    return Tables(metadata, _define(metadata, SHADOW if shadow else "", generation))


def tracking_table(schema: str | None) -> sa.Table:
    """Where each projection keeps its position in the ledger and its build generation."""
    return sa.Table(
        "rl_tracking",
        sa.MetaData(schema=schema),
        Column("name", String(32), primary_key=True),
        Column("position", BigInteger, nullable=False),
        Column("generation", Integer, nullable=False),
    )
