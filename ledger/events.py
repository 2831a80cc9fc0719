"""The catalogue of facts the ledger records (documented field by field in docs/events.md).

Every fact is an immutable ``eventsourcing`` domain event with the same envelope:

- ``occurred_at``: business time (timezone aware, UTC inside);
- ``timestamp``: the time the ledger recorded it (eventsourcing's own field);
- ``source`` / ``source_id``: the system and that system's id for this fact, the idempotency key;
- ``actor``: who or what did it.

Each fact is stored as the first and only event of its own stream, whose id is derived from
(``source``, ``source_id``) by :func:`fact_id`. The store's primary key therefore refuses a second
copy of the same fact, whichever process delivers it. Facts are *not* grouped into one stream per
lead: a stream is ordered by arrival, while every question the ledger answers is ordered by
business time, so the per-lead view is a projection that sorts by ``occurred_at``.

The ``type`` of a fact in the canonical JSONL format is the snake_case name in :data:`FACT_TYPES`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import typing
import uuid
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar

from eventsourcing.domain import DomainEvent

FACT_NAMESPACE = uuid.UUID("6f1c1d2e-6b1a-5c7e-9a43-2f0d8b7e4a10")

ENVELOPE = ("occurred_at", "source", "source_id", "actor")
OPPORTUNITY_TYPES = frozenset({"new", "expansion", "renewal"})


# uuid5 is SHA-1 over namespace bytes + name, truncated to 128 bits with the version and variant
# bits set; fact_id computes exactly that (tests/unit/test_ingest_fast_path.py proves equality with
# uuid.uuid5) without uuid5's per-call namespace concatenation and UUID() argument checks.
try:  # CPython's own SHA-1: the same digest, cheaper per short input than OpenSSL's
    _sha1: Any = importlib.import_module("_sha1").sha1
except ImportError:  # pragma: no cover - builds without the module
    _sha1 = hashlib.sha1
_NAMESPACE_SHA1 = _sha1(FACT_NAMESPACE.bytes)
_UUID5_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # version nibble and variant bits
_UUID5_SET = (5 << 76) | (0x8000 << 48)  # version 5, RFC 4122 variant
_new_object = object.__new__
_set_slot = object.__setattr__
_SAFE_UNKNOWN = uuid.SafeUUID.unknown


def fact_id(source: str, source_id: str) -> uuid.UUID:
    """Return the stream id of the fact that ``source`` calls ``source_id`` (stable forever).

    Equal to ``uuid.uuid5(FACT_NAMESPACE, f"{len(source)}:{source}:{source_id}")``.
    """
    digest = _NAMESPACE_SHA1.copy()
    digest.update(f"{len(source)}:{source}:{source_id}".encode())
    return uuid_of((int.from_bytes(digest.digest()[:16]) & _UUID5_CLEAR) | _UUID5_SET)


def uuid_of(value: int) -> uuid.UUID:
    """``uuid.UUID(int=value)`` for a value known to fit, without the argument checks."""
    result: uuid.UUID = _new_object(uuid.UUID)
    _set_slot(result, "int", value)
    _set_slot(result, "is_safe", _SAFE_UNKNOWN)
    return result


def stamped(fact: Fact, timestamp: datetime) -> Fact:
    """A copy of ``fact`` recorded at ``timestamp``: ``dataclasses.replace(fact, timestamp=...)``.

    A fact whose state holds exactly its fields in field order (as ``__init__`` and
    ``parse_fact`` build it) is copied directly, which gives the same object ``replace`` would,
    at a fraction of the cost; anything else goes through ``replace`` itself.
    """
    state = vars(fact)
    if tuple(state) != _state_fields(type(fact)) or type(state["originator_id"]) is not uuid.UUID:
        return dataclasses.replace(fact, timestamp=timestamp)
    copy = state.copy()
    copy["timestamp"] = timestamp
    result: Fact = _new_object(type(fact))
    _set_slot(result, "__dict__", copy)
    return result


@cache
def _state_fields(cls: type[Fact]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


class Fact(DomainEvent):
    """A fact in the ledger: the envelope shared by every event type."""

    type_name: ClassVar[str] = ""
    subject_field: ClassVar[str] = ""

    occurred_at: datetime
    source: str
    source_id: str
    actor: str

    @property
    def id(self) -> uuid.UUID:
        """The fact's stream id, derived from (source, source_id)."""
        return self.originator_id

    @property
    def recorded_at(self) -> datetime:
        """When the ledger recorded the fact (ledger time, as opposed to business time)."""
        return self.timestamp

    @property
    def subject(self) -> str:
        """The id of the lead, opportunity, account or campaign this fact is about."""
        return str(getattr(self, self.subject_field))

    def payload(self) -> dict[str, Any]:
        """The fact's domain fields (everything but the envelope and storage fields)."""
        skip = {"originator_id", "originator_version", "timestamp", *ENVELOPE}
        return {k: v for k, v in vars(self).items() if k not in skip}


# --- Leads ---------------------------------------------------------------------------------------


class LeadCaptured(Fact):
    """A person entered the funnel (a raw inquiry), with what is known about them."""

    type_name = "lead_captured"
    subject_field = "lead_id"
    lead_id: str
    email: str | None = None
    name: str | None = None
    company: str | None = None
    account_id: str | None = None
    segment: str | None = None
    country: str | None = None
    lead_source: str | None = None
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)


class LeadUpdated(Fact):
    """Attributes of a lead changed (company, segment, title, any custom attribute)."""

    type_name = "lead_updated"
    subject_field = "lead_id"
    lead_id: str
    attributes: dict[str, Any]


class TouchRecorded(Fact):
    """A marketing or sales touch on a lead: a campaign response, visit, event, email, call."""

    type_name = "touch_recorded"
    subject_field = "lead_id"
    lead_id: str
    channel: str
    touch_type: str
    campaign_id: str | None = None
    cost: Decimal | None = None
    currency: str | None = None


class ScoreChanged(Fact):
    """A lead's score and/or fit grade changed under a named scoring model version."""

    type_name = "score_changed"
    subject_field = "lead_id"
    lead_id: str
    score: int
    model_version: str
    fit: str | None = None


class StageChanged(Fact):
    """A lead moved between funnel stages, as the source recorded it.

    Skips and backward moves too.
    """

    type_name = "stage_changed"
    subject_field = "lead_id"
    lead_id: str
    to_stage: str
    from_stage: str | None = None


class HandedOff(Fact):
    """Marketing passed the lead to sales (an SDR, a rep or a queue)."""

    type_name = "handed_off"
    subject_field = "lead_id"
    lead_id: str
    to_owner: str
    team: str | None = None


class LeadAccepted(Fact):
    """Sales accepted the lead: agreed to work it."""

    type_name = "lead_accepted"
    subject_field = "lead_id"
    lead_id: str
    owner: str


class LeadRejected(Fact):
    """Sales rejected the lead, with a reason."""

    type_name = "lead_rejected"
    subject_field = "lead_id"
    lead_id: str
    reason: str
    owner: str | None = None


class LeadRecycled(Fact):
    """The lead went back to marketing nurture, with a reason."""

    type_name = "lead_recycled"
    subject_field = "lead_id"
    lead_id: str
    reason: str


class LeadDisqualified(Fact):
    """The lead was disqualified (not a fit, competitor, spam...), with a reason."""

    type_name = "lead_disqualified"
    subject_field = "lead_id"
    lead_id: str
    reason: str


class OwnerAssigned(Fact):
    """The lead's owner changed (assignment or reassignment)."""

    type_name = "owner_assigned"
    subject_field = "lead_id"
    lead_id: str
    owner: str
    team: str | None = None


class SalesActivityRecorded(Fact):
    """Sales acted on the lead (call, email, meeting).

    The first one after hand-off drives the SLA.
    """

    type_name = "sales_activity_recorded"
    subject_field = "lead_id"
    lead_id: str
    activity_type: str
    owner: str | None = None


# --- Opportunities -------------------------------------------------------------------------------


class OpportunityOpened(Fact):
    """An opportunity was created, with its amount, type and the leads/contacts behind it."""

    type_name = "opportunity_opened"
    subject_field = "opportunity_id"
    opportunity_id: str
    account_id: str
    amount: Decimal
    currency: str
    opportunity_type: str
    stage: str
    lead_ids: tuple[str, ...] = ()
    contact_ids: tuple[str, ...] = ()
    owner: str | None = None
    expected_close: date | None = None


class OpportunityStageChanged(Fact):
    """An opportunity moved between sales stages."""

    type_name = "opportunity_stage_changed"
    subject_field = "opportunity_id"
    opportunity_id: str
    to_stage: str
    from_stage: str | None = None


class OpportunityAmountChanged(Fact):
    """An opportunity's amount changed (the new amount, not a delta)."""

    type_name = "opportunity_amount_changed"
    subject_field = "opportunity_id"
    opportunity_id: str
    amount: Decimal
    currency: str


class OpportunityWon(Fact):
    """An opportunity closed won, at its final amount."""

    type_name = "opportunity_won"
    subject_field = "opportunity_id"
    opportunity_id: str
    amount: Decimal
    currency: str


class OpportunityLost(Fact):
    """An opportunity closed lost, with a reason."""

    type_name = "opportunity_lost"
    subject_field = "opportunity_id"
    opportunity_id: str
    reason: str


class OpportunityReopened(Fact):
    """A closed opportunity was reopened."""

    type_name = "opportunity_reopened"
    subject_field = "opportunity_id"
    opportunity_id: str
    reason: str | None = None


# --- Account revenue -----------------------------------------------------------------------------


class ContractStarted(Fact):
    """A new contract started for an account (a new logo): its annual recurring revenue.

    A renewal that keeps the contract is not a new start; its ARR changes are recorded as
    expansion, contraction or churn, so ARR is never counted twice.
    """

    type_name = "contract_started"
    subject_field = "account_id"
    account_id: str
    contract_id: str
    arr: Decimal
    currency: str
    opportunity_id: str | None = None


class ContractExpanded(Fact):
    """An account's recurring revenue grew (cross-sell, up-sell) by ``amount``."""

    type_name = "contract_expanded"
    subject_field = "account_id"
    account_id: str
    contract_id: str
    amount: Decimal
    currency: str
    opportunity_id: str | None = None


class ContractContracted(Fact):
    """An account's recurring revenue shrank by ``amount`` (down-sell) without churning."""

    type_name = "contract_contracted"
    subject_field = "account_id"
    account_id: str
    contract_id: str
    amount: Decimal
    currency: str
    reason: str | None = None


class ContractChurned(Fact):
    """An account's contract ended: ``amount`` of recurring revenue lost."""

    type_name = "contract_churned"
    subject_field = "account_id"
    account_id: str
    contract_id: str
    amount: Decimal
    currency: str
    reason: str | None = None


# --- Campaigns -----------------------------------------------------------------------------------


class CampaignCreated(Fact):
    """A marketing campaign/program exists, on a channel."""

    type_name = "campaign_created"
    subject_field = "campaign_id"
    campaign_id: str
    name: str
    channel: str
    campaign_type: str | None = None


class CampaignSpendRecorded(Fact):
    """Program spend on a campaign for a period ``[period_start, period_end]`` (inclusive dates)."""

    type_name = "campaign_spend_recorded"
    subject_field = "campaign_id"
    campaign_id: str
    amount: Decimal
    currency: str
    period_start: date
    period_end: date


# --- Corrections ---------------------------------------------------------------------------------


class FactRetracted(Fact):
    """An earlier fact, named by its (source, source_id), is withdrawn: projections ignore it."""

    type_name = "fact_retracted"
    subject_field = "target_source_id"
    target_source: str
    target_source_id: str
    reason: str


class FactAmended(Fact):
    """An earlier fact is superseded by a copy with ``changes`` applied to its fields."""

    type_name = "fact_amended"
    subject_field = "target_source_id"
    target_source: str
    target_source_id: str
    changes: dict[str, Any]
    reason: str


# --- Funnel definitions and qualification --------------------------------------------------------


class DefinitionProposed(Fact):
    """A version of the funnel definition was proposed (see docs/definitions.md)."""

    type_name = "definition_proposed"
    subject_field = "version"
    version: str
    effective_from: date
    change_note: str
    definition: dict[str, Any]


class DefinitionApproved(Fact):
    """A proposed definition version was approved.

    The approver is the marketing or the sales owner (the fact's actor).
    """

    type_name = "definition_approved"
    subject_field = "version"
    version: str
    role: str


class QualificationEvaluated(Fact):
    """The definition in force was evaluated for a lead after one of its facts changed.

    ``results`` holds, per stage with a qualification rule, the outcome and the conditions that
    held or failed with the facts (``source/source_id``) that supplied their values.
    """

    type_name = "qualification_evaluated"
    subject_field = "lead_id"
    lead_id: str
    definition_version: str
    trigger_source: str
    trigger_source_id: str
    qualified: tuple[str, ...]
    results: dict[str, Any]
    crm_stage: str | None = None


CORRECTIONS: tuple[type[Fact], ...] = (FactRetracted, FactAmended)

FACT_TYPES: dict[str, type[Fact]] = {
    cls.type_name: cls
    for cls in (
        LeadCaptured,
        LeadUpdated,
        TouchRecorded,
        ScoreChanged,
        StageChanged,
        HandedOff,
        LeadAccepted,
        LeadRejected,
        LeadRecycled,
        LeadDisqualified,
        OwnerAssigned,
        SalesActivityRecorded,
        OpportunityOpened,
        OpportunityStageChanged,
        OpportunityAmountChanged,
        OpportunityWon,
        OpportunityLost,
        OpportunityReopened,
        ContractStarted,
        ContractExpanded,
        ContractContracted,
        ContractChurned,
        CampaignCreated,
        CampaignSpendRecorded,
        FactRetracted,
        FactAmended,
        DefinitionProposed,
        DefinitionApproved,
        QualificationEvaluated,
    )
}


@cache
def domain_fields(cls: type[Fact]) -> dict[str, Any]:
    """Map each domain field of ``cls`` (envelope excluded) to its resolved type."""
    hints = typing.get_type_hints(cls)
    skip = {"originator_id", "originator_version", "timestamp", *ENVELOPE}
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name not in skip}


@cache
def required_fields(cls: type[Fact]) -> frozenset[str]:
    """The domain fields of ``cls`` that have no default."""
    return frozenset(
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ) - {"originator_id", "originator_version", "timestamp", *ENVELOPE}
