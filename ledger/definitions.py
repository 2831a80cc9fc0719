"""The funnel definition: one agreed, versioned statement of what makes a lead an MQL, SAL, SQL...

A definition names its ordered stages (with terminal and side states), a qualification rule per
automatic transition (:mod:`ledger.rules`), the hand-off SLA, recycle rules, the owners who must
approve it, an effective-from date and a change note. It is written as a TOML (or JSON) file and
recorded in the ledger by ``definition_proposed``; docs/definitions.md has the file format.
Parsing refuses a bad file with one :class:`DefinitionError` naming the file, the key and, for
rules, the character position.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ledger.errors import RevledgerError
from ledger.rules import Rule, RuleError, parse_rule

ROLES = ("marketing", "sales")
DURATION = re.compile(r"^\s*([0-9]+)\s*(m|min|h|d)\s*$")
MINUTES = {"m": 1, "min": 1, "h": 60, "d": 1440}
TOP_KEYS = frozenset(
    {
        "version",
        "effective_from",
        "change_note",
        "stages",
        "terminal",
        "side",
        "owners",
        "transitions",
        "handoff",
        "recycle",
        "sourced_by",
    }
)
HEADER = ("version", "effective_from", "change_note")


class DefinitionError(RevledgerError):
    """A definition file, or one of its keys, is invalid; the message names where."""


@dataclass(frozen=True)
class Transition:
    """An automatic transition: into ``to`` from any of ``from_``, when ``rule`` holds."""

    to: str
    from_: tuple[str, ...]
    rule: Rule


@dataclass(frozen=True)
class Definition:
    """One version of the funnel definition, as proposed."""

    version: str
    effective_from: date
    change_note: str
    stages: tuple[str, ...]
    terminal: tuple[str, ...]
    side: tuple[str, ...]
    owners: dict[str, str]
    transitions: tuple[Transition, ...]
    sla_minutes: int
    recycle_after_days: int | None
    recycle_reasons: tuple[str, ...]
    sourced_by: Rule | None
    document: dict[str, Any]  # the normalised body recorded in the ledger

    @property
    def effective_at(self) -> datetime:
        """The instant the version takes effect: the start of its effective date, in UTC."""
        day = self.effective_from
        return datetime(day.year, day.month, day.day, tzinfo=UTC)

    @property
    def sla(self) -> timedelta:
        """The hand-off SLA: time allowed from hand-off to the first sales activity."""
        return timedelta(minutes=self.sla_minutes)

    def rule_for(self, stage: str) -> Rule | None:
        """The rule of the (first) transition into ``stage``, if it is automatic."""
        return next((t.rule for t in self.transitions if t.to == stage), None)


def load_file(path: Path) -> Definition:
    """Read a definition from a ``.toml`` or ``.json`` file."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DefinitionError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        if path.suffix.lower() == ".json":
            data = orjson.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError, UnicodeDecodeError) as error:
        raise DefinitionError(f"{path}: not valid {_kind(path)}: {error}") from None
    if not isinstance(data, dict):
        raise DefinitionError(f"{path}: expected a table of keys at the top")
    try:
        return parse_definition(data)
    except DefinitionError as error:
        raise DefinitionError(f"{path}: {error}") from None


def _kind(path: Path) -> str:
    return "JSON" if path.suffix.lower() == ".json" else "TOML"


def parse_definition(data: dict[str, Any]) -> Definition:
    """Validate a definition document (file or ledger form); errors name the key."""
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise DefinitionError(f"{min(unknown)}: unknown key; see docs/definitions.md")
    version = _text(data, "version")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", version):
        raise DefinitionError("version: use letters, digits, '.', '_' or '-' (e.g. 2025-11)")
    effective = _date(data.get("effective_from"))
    note = _text(data, "change_note")
    stages = _names(data, "stages", required=True)
    terminal = _names(data, "terminal", within=stages)
    side = _names(data, "side")
    overlap = set(side) & set(stages)
    if overlap:
        raise DefinitionError(f"side: {min(overlap)} is already an ordered stage")
    owners = _owners(data.get("owners"))
    known = (*stages, *side)
    transitions = _transitions(data.get("transitions", []), known)
    handoff = _table(data, "handoff")
    sla = _duration(handoff.get("first_activity_within", "24h"), "handoff.first_activity_within")
    if set(handoff) - {"first_activity_within"}:
        raise DefinitionError(
            f"handoff.{min(set(handoff) - {'first_activity_within'})}: unknown key"
        )
    recycle = _table(data, "recycle")
    if set(recycle) - {"no_activity_days", "reasons"}:
        bad = min(set(recycle) - {"no_activity_days", "reasons"})
        raise DefinitionError(f"recycle.{bad}: unknown key")
    days = recycle.get("no_activity_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
        raise DefinitionError("recycle.no_activity_days: expected a whole number of days >= 1")
    reasons = _names(recycle, "reasons", label="recycle.reasons")
    sourced = data.get("sourced_by")
    sourced_rule = _rule(sourced, "sourced_by") if sourced is not None else None
    document = {
        "stages": list(stages),
        "terminal": list(terminal),
        "side": list(side),
        "owners": owners,
        "transitions": [
            {"to": t.to, "from": list(t.from_), "rule": t.rule.text} for t in transitions
        ],
        "handoff": {"first_activity_within": f"{sla}m"},
        "recycle": {"no_activity_days": days, "reasons": list(reasons)},
        "sourced_by": sourced,
    }
    return Definition(
        version, effective, note, stages, terminal, side, owners, transitions, sla, days,
        reasons, sourced_rule, document,
    )  # fmt: skip


def from_ledger(version: str, effective: date, note: str, body: dict[str, Any]) -> Definition:
    """Rebuild a definition from the fields of a ``definition_proposed`` fact."""
    document = {k: v for k, v in body.items() if v is not None}
    if isinstance(document.get("recycle"), dict):
        document["recycle"] = {k: v for k, v in document["recycle"].items() if v is not None}
    return parse_definition(
        {**document, "version": version, "effective_from": effective, "change_note": note}
    )


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(f"{key}: required, a non-empty string")
    return value.strip()


def _date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise DefinitionError(f"effective_from: expected a date (YYYY-MM-DD), got {value!r}")


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise DefinitionError(f"{key}: expected a table")
    return value


def _names(
    data: dict[str, Any],
    key: str,
    *,
    required: bool = False,
    within: tuple[str, ...] | None = None,
    label: str | None = None,
) -> tuple[str, ...]:
    label = label or key
    value = data.get(key)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or (required and not value):
        raise DefinitionError(f"{label}: expected a non-empty list of names")
    names: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", item):
            raise DefinitionError(f"{label}[{index}]: expected a lower-case name, got {item!r}")
        if item in names:
            raise DefinitionError(f"{label}[{index}]: {item} is listed twice")
        if within is not None and item not in within:
            raise DefinitionError(f"{label}[{index}]: {item} is not one of the stages")
        names.append(item)
    return tuple(names)


def _owners(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise DefinitionError("owners: required, a table naming the marketing and sales owners")
    for role in ROLES:
        owner = value.get(role)
        if not isinstance(owner, str) or not owner.strip():
            raise DefinitionError(f"owners.{role}: required, the actor who approves for {role}")
    extra = set(value) - set(ROLES)
    if extra:
        raise DefinitionError(f"owners.{min(extra)}: unknown role; use marketing and sales")
    if value["marketing"].strip() == value["sales"].strip():
        raise DefinitionError("owners.sales: must be a different actor from owners.marketing")
    return {role: value[role].strip() for role in ROLES}


def _transitions(value: Any, known: tuple[str, ...]) -> tuple[Transition, ...]:
    if not isinstance(value, list):
        raise DefinitionError("transitions: expected a list of tables")
    out: list[Transition] = []
    for index, item in enumerate(value):
        key = f"transitions[{index}]"
        if not isinstance(item, dict):
            raise DefinitionError(f"{key}: expected a table with from, to and rule")
        extra = set(item) - {"from", "to", "rule"}
        if extra:
            raise DefinitionError(f"{key}.{min(extra)}: unknown key")
        to = item.get("to")
        if to not in known:
            raise DefinitionError(f"{key}.to: {to!r} is not a stage of this definition")
        sources = _names(item, "from", required=True, within=known, label=f"{key}.from")
        out.append(Transition(str(to), sources, _rule(item.get("rule"), f"{key}.rule")))
    return tuple(out)


def _rule(value: Any, key: str) -> Rule:
    if not isinstance(value, str):
        raise DefinitionError(f"{key}: expected the rule as a string")
    try:
        return parse_rule(value)
    except RuleError as error:
        raise DefinitionError(f"{key}: {error}") from None


def _duration(value: Any, key: str) -> int:
    match = DURATION.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) < 1:
        raise DefinitionError(f"{key}: expected a duration such as 5m, 24h or 2d, got {value!r}")
    return int(match.group(1)) * MINUTES[match.group(2)]
