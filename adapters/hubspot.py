"""HubSpot CRM API v3 contacts and deals, with ``propertiesWithHistory``, as ledger facts.

Input files hold what the API returns: a page ``{"results": [...], "paging": ...}`` (``.json``,
read whole: an API page holds at most 100 objects), or JSON Lines (``.jsonl``/``.ndjson``, read
line by line, constant memory) whose lines are objects or pages. An object is a deal when it has
a ``dealstage`` property, else a contact. Each object carries its own full history, so nothing
is kept from one object to the next.

Ids: ``hs:contact:901``, ``hs:deal:555``, ``hs:company:77`` (HubSpot numbers each object type
separately). Source ids: ``contact/901:created``, and for a history entry the object, property
and HubSpot's own timestamp of the change, ``contact/901:lifecyclestage:2024-03-07T09:10:00.000Z``,
which is the same in every later export.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from adapters.files import (
    SLOTS,
    Input,
    Record,
    SourceFileError,
    StageMap,
    checkpoint_key,
    digest,
    parse_time,
    read_config,
    record_items,
    row_text,
)
from adapters.pipeline import Item, Reject
from ledger.errors import InvalidFact

SOURCE = "hubspot"
LIFECYCLE_STAGES = {
    "subscriber": "inquiry",
    "lead": "inquiry",
    "marketingqualifiedlead": "mql",
    "salesqualifiedlead": "sql",
    "opportunity": "sqo",
    "customer": "won",
    "evangelist": "won",
    "other": "other",
}
DEAL_STAGES = {
    "appointmentscheduled": "appointment_scheduled",
    "qualifiedtobuy": "qualified_to_buy",
    "presentationscheduled": "presentation_scheduled",
    "decisionmakerboughtin": "decision_maker_bought_in",
    "contractsent": "contract_sent",
    "closedwon": "closed_won",
    "closedlost": "closed_lost",
}
DEAL_TYPES = {"newbusiness": "new", "existingbusiness": "expansion", "renewal": "renewal"}
LEAD_STATUS_FACTS = {
    "UNQUALIFIED": ("lead_disqualified", "disqualified"),
    "BAD_TIMING": ("lead_recycled", "recycled"),
}
WON, LOST = "closed_won", "closed_lost"
TABLES = ("lifecycle_stages", "deal_stages", "deal_types")
SETTINGS = ("currency", "on_unmapped")


@dataclass
class Settings:
    """The maps a HubSpot load uses (defaults, overridden by a ``--config`` TOML file)."""

    lifecycle: StageMap
    deals: StageMap
    deal_types: dict[str, str]
    currency: str = "USD"
    fingerprint: str = ""


def load_settings(path: str | Path | None = None) -> Settings:
    """The default maps, overridden by the TOML file at ``path`` if given."""
    config = read_config(path, TABLES, SETTINGS)
    raw, tables, policy, currency = config.raw, config.tables, config.policy, config.currency
    hint = f"the {{}} table of {path}" if path else "the {} table of a --config file"
    return Settings(
        lifecycle=StageMap(
            {**LIFECYCLE_STAGES, **tables["lifecycle_stages"]},
            hint.format("lifecycle_stages"),
            policy,
        ),
        deals=StageMap(
            {**DEAL_STAGES, **tables["deal_stages"]}, hint.format("deal_stages"), policy
        ),
        deal_types={**DEAL_TYPES, **tables["deal_types"]},
        currency=currency,
        fingerprint=digest(raw),
    )


def history(obj: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """A property's history, oldest first, without blank values or repeats of the same value."""
    entries = (obj.get("propertiesWithHistory") or {}).get(name) or []
    ordered = sorted(
        (e for e in entries if isinstance(e, dict) and e.get("timestamp")),
        key=lambda e: parse_time(str(e["timestamp"]), f"{name}.timestamp"),
    )
    kept: list[dict[str, Any]] = []
    for entry in ordered:
        value = str(entry.get("value") or "").strip()
        if value and (not kept or value != kept[-1]["value"]):
            kept.append({**entry, "value": value})
    return kept


def change_actor(entry: dict[str, Any]) -> str:
    """Who made a change: the HubSpot user, else the source type and id (a workflow, an import)."""
    if entry.get("updatedByUserId"):
        return f"hs-user:{entry['updatedByUserId']}"
    parts = [str(entry[k]) for k in ("sourceType", "sourceId") if entry.get(k)]
    return ":".join(["hubspot", *parts]) if parts else SOURCE


def _at(entry: dict[str, Any], name: str) -> str:
    return parse_time(str(entry["timestamp"]), f"{name}.timestamp")


def contact(obj: dict[str, Any], settings: Settings) -> list[Record | InvalidFact]:
    """One contact: captured, every lifecycle stage change, every lead status change."""
    oid, props = str(obj["id"]), obj.get("properties") or {}
    lead_id, key = f"hs:contact:{oid}", f"contact/{oid}"
    created = parse_time(str(obj.get("createdAt") or props.get("createdate") or ""), "createdAt")
    name = " ".join(str(props[k]).strip() for k in ("firstname", "lastname") if props.get(k))
    attributes = {k: props[k] for k in ("jobtitle", "industry") if props.get(k)}
    records: list[Record | InvalidFact] = [
        {
            "type": "lead_captured",
            "occurred_at": created,
            "source": SOURCE,
            "source_id": f"{key}:created",
            "actor": SOURCE,
            "lead_id": lead_id,
            "email": props.get("email"),
            "name": name,
            "company": props.get("company"),
            "country": props.get("country"),
            "lead_source": props.get("hs_analytics_source"),
            "attributes": attributes,
        }
    ]
    previous: str | None = None
    for entry in history(obj, "lifecyclestage"):
        base = {
            "occurred_at": _at(entry, "lifecyclestage"),
            "source": SOURCE,
            "actor": change_actor(entry),
            "lead_id": lead_id,
        }
        try:
            stage = settings.lifecycle(entry["value"], "lifecyclestage")
        except InvalidFact as error:
            records.append(error)
            continue
        if stage is None:
            continue
        records.append(
            {
                **base,
                "type": "stage_changed",
                "to_stage": stage,
                "from_stage": previous,
                "source_id": f"{key}:lifecyclestage:{entry['timestamp']}",
            }
        )
        previous = stage
    for entry in history(obj, "hs_lead_status"):
        base = {
            "occurred_at": _at(entry, "hs_lead_status"),
            "source": SOURCE,
            "actor": change_actor(entry),
            "lead_id": lead_id,
        }
        stamp, value = entry["timestamp"], entry["value"]
        records.append(
            {
                **base,
                "type": "lead_updated",
                "attributes": {"hs_lead_status": value},
                "source_id": f"{key}:hs_lead_status:{stamp}",
            }
        )
        if value in LEAD_STATUS_FACTS:
            kind, suffix = LEAD_STATUS_FACTS[value]
            records.append(
                {**base, "type": kind, "reason": value, "source_id": f"{key}:{suffix}:{stamp}"}
            )
    return records


def _associated(obj: dict[str, Any], kind: str) -> list[str]:
    found = ((obj.get("associations") or {}).get(kind) or {}).get("results") or []
    return sorted({str(a["id"]) for a in found if isinstance(a, dict) and a.get("id")})


def _amount_at(amounts: list[dict[str, Any]], at: str, default: str) -> str:
    """The deal's amount as of ``at`` (the last amount change at or before it)."""
    value = default
    for entry in amounts:
        if _at(entry, "amount") <= at:
            value = entry["value"]
    return value


def deal(obj: dict[str, Any], settings: Settings) -> list[Record | InvalidFact]:  # noqa: C901 - one deal's facts, read top down
    """One deal: opened, each stage and amount change, and each close or reopening."""
    oid, props = str(obj["id"]), obj.get("properties") or {}
    opp, key = f"hs:deal:{oid}", f"deal/{oid}"
    created = parse_time(str(obj.get("createdAt") or props.get("createdate") or ""), "createdAt")
    stages, amounts = history(obj, "dealstage"), history(obj, "amount")
    if not stages and props.get("dealstage"):
        stages = [{"value": str(props["dealstage"]), "timestamp": created}]
    if not stages:
        raise InvalidFact("the deal has no dealstage", "dealstage")
    kind = str(props.get("dealtype") or "").strip()
    opportunity_type = settings.deal_types.get(kind) if kind else "new"
    if opportunity_type is None:
        raise InvalidFact(
            f"deal type {kind!r} is not mapped; add it to the deal_types table of a "
            "--config file (new, expansion or renewal)",
            "dealtype",
        )
    companies = _associated(obj, "companies")
    currency = str(props.get("deal_currency_code") or settings.currency)
    current_amount = str(props.get("amount") or "").strip() or "0"
    base = {"source": SOURCE, "opportunity_id": opp}
    first_stage = settings.deals(stages[0]["value"], "dealstage")
    if first_stage is None:
        return []
    records: list[Record | InvalidFact] = [
        {
            **base,
            "type": "opportunity_opened",
            "occurred_at": created,
            "actor": SOURCE,
            "source_id": f"{key}:created",
            "stage": first_stage,
            "account_id": f"hs:company:{companies[0]}" if companies else opp,
            "amount": amounts[0]["value"] if amounts else current_amount,
            "currency": currency,
            "opportunity_type": opportunity_type,
            "lead_ids": [f"hs:contact:{c}" for c in _associated(obj, "contacts")],
            "owner": f"hs-owner:{props['hubspot_owner_id']}"
            if props.get("hubspot_owner_id")
            else None,
            "expected_close": str(props.get("closedate") or "")[:10] or None,
        }
    ]
    previous = None
    for entry in stages:
        try:
            stage = settings.deals(entry["value"], "dealstage")
        except InvalidFact as error:
            records.append(error)
            continue
        if stage is None:
            continue
        at, stamp = _at(entry, "dealstage"), entry["timestamp"]
        step = {**base, "occurred_at": at, "actor": change_actor(entry)}
        if previous is not None:
            records.append(
                {
                    **step,
                    "type": "opportunity_stage_changed",
                    "to_stage": stage,
                    "from_stage": previous,
                    "source_id": f"{key}:dealstage:{stamp}",
                }
            )
        if stage == WON:
            records.append(
                {
                    **step,
                    "type": "opportunity_won",
                    "source_id": f"{key}:won:{stamp}",
                    "amount": _amount_at(amounts, at, current_amount),
                    "currency": currency,
                }
            )
        elif stage == LOST:
            reason = str(props.get("closed_lost_reason") or "").strip() or entry["value"]
            records.append(
                {
                    **step,
                    "type": "opportunity_lost",
                    "reason": reason,
                    "source_id": f"{key}:lost:{stamp}",
                }
            )
        elif previous in (WON, LOST):
            records.append(
                {**step, "type": "opportunity_reopened", "source_id": f"{key}:reopened:{stamp}"}
            )
        previous = stage
    records.extend(
        {
            **base,
            "type": "opportunity_amount_changed",
            "amount": entry["value"],
            "currency": currency,
            "occurred_at": _at(entry, "amount"),
            "actor": change_actor(entry),
            "source_id": f"{key}:amount:{entry['timestamp']}",
        }
        for entry in amounts[1:]
    )
    return records


def convert(obj: Any, settings: Settings) -> list[Record | InvalidFact]:
    """The facts of one contact or deal object."""
    if not isinstance(obj, dict) or not obj.get("id"):
        raise InvalidFact("expected a HubSpot object with an id", "id")
    props = obj.get("properties") or {}
    is_deal = "dealstage" in props or "dealstage" in (obj.get("propertiesWithHistory") or {})
    return deal(obj, settings) if is_deal else contact(obj, settings)


def objects(path: Path) -> Iterator[tuple[str, Any]]:
    """(location, object) for every object in a page file or a JSONL file."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open("rb") as handle:
            for line, raw in enumerate(handle, start=1):
                if raw.strip():
                    yield from _unpage(f"{path}:{line}", _loads(raw))
        return
    yield from _unpage(str(path), _loads(path.read_bytes()))


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return InvalidFact(f"not valid JSON ({error})")


def _unpage(where: str, data: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        for index, obj in enumerate(data["results"]):
            yield f"{where}:results[{index}]", obj
    elif isinstance(data, list):
        for index, obj in enumerate(data):
            yield f"{where}:[{index}]", obj
    else:
        yield where, data


def object_items(path: Path, settings: Settings) -> Iterator[Item]:
    """Pipeline items for every object of one file."""
    for number, (where, obj) in enumerate(objects(path), start=1):
        try:
            if isinstance(obj, InvalidFact):
                raise obj
            records = convert(obj, settings)
        except InvalidFact as error:
            yield Item(
                number * SLOTS, reject=Reject(where, error.field, error.reason, row_text(obj))
            )
            continue
        yield from record_items(where, number * SLOTS, records, obj)


def hubspot_inputs(paths: list[str], settings: Settings, *, rescan: bool = False) -> list[Input]:
    """The inputs of a HubSpot load, every file checked to exist first."""
    for name in paths:
        if not Path(name).is_file():
            raise SourceFileError(f"cannot read {name}: no such file; check the path")
    return [
        Input(
            name,
            None if rescan else checkpoint_key("hubspot", Path(name), settings.fingerprint),
            object_items(Path(name), settings),
        )
        for name in paths
    ]
