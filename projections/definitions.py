"""The definition catalogue and its workflow: proposed -> approved by both owners -> in force.

All state is derived from the ledger's ``definition_proposed`` and ``definition_approved`` facts,
read by topic straight from the notification log (they are few). A version is *approved* once
its marketing owner and its sales owner (two different actors, named by the definition) have
both approved it; it is *in force* at a business time when it is the approved version with the
latest effective date not after that time (a later approval of the same date wins). Superseded
versions stay in the catalogue forever. See docs/definitions.md, "Workflow".
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from eventsourcing.utils import get_topic

from ledger.application import Ledger
from ledger.codec import parse_fact
from ledger.definitions import ROLES, Definition, DefinitionError, from_ledger, load_file
from ledger.events import DefinitionApproved, DefinitionProposed, Fact

SOURCE = "revledger"
TOPICS = (get_topic(DefinitionProposed), get_topic(DefinitionApproved))
PAGE = 1000


@dataclass(frozen=True)
class Approval:
    """One owner's approval of a version."""

    role: str
    actor: str
    at: datetime
    position: int


@dataclass
class Version:
    """A proposed version, its approvals, and whether its recorded body is valid."""

    definition: Definition
    proposed_by: str
    proposed_at: datetime
    position: int
    approvals: dict[str, Approval] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The version's name."""
        return self.definition.version

    def approved(self) -> bool:
        """Whether both owners approved."""
        return all(role in self.approvals for role in ROLES)

    @property
    def approved_position(self) -> int:
        """The position of the approval that completed the pair."""
        return max(a.position for a in self.approvals.values())


@dataclass
class Catalogue:
    """Every definition version in the ledger, in order of proposal."""

    versions: dict[str, Version] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)  # version -> why it cannot be used

    @classmethod
    def load(cls, ledger: Ledger) -> Catalogue:
        """Read every definition fact of ``ledger``."""
        catalogue = cls()
        after = 0
        while True:
            rows = ledger.recorder.select_notifications(
                after + 1, PAGE, topics=TOPICS, inclusive_of_start=True
            )
            for row in rows:
                catalogue.add(row.id, ledger.decode(row))
            if len(rows) < PAGE:
                return catalogue
            after = rows[-1].id

    def add(self, position: int, fact: Fact) -> None:
        """Take one definition fact into account."""
        if isinstance(fact, DefinitionProposed):
            if fact.version in self.versions or fact.version in self.invalid:
                return
            try:
                definition = from_ledger(
                    fact.version, fact.effective_from, fact.change_note, fact.definition
                )
            except DefinitionError as error:
                self.invalid[fact.version] = str(error)
                return
            self.versions[fact.version] = Version(
                definition, fact.actor, fact.occurred_at, position
            )
        elif isinstance(fact, DefinitionApproved):
            version = self.versions.get(fact.version)
            if version is not None and _valid_approval(version, fact.role, fact.actor) is None:
                version.approvals[fact.role] = Approval(
                    fact.role, fact.actor, fact.occurred_at, position
                )

    def get(self, name: str) -> Version:
        """The version called ``name``, or a :class:`DefinitionError` saying what exists."""
        if name in self.invalid:
            raise DefinitionError(f"version {name} was recorded invalid: {self.invalid[name]}")
        try:
            return self.versions[name]
        except KeyError:
            known = ", ".join(self.versions) or "none yet"
            raise DefinitionError(f"no definition version {name!r} (known: {known})") from None

    def approved(self) -> list[Version]:
        """Approved versions in the order they take effect."""
        done = [v for v in self.versions.values() if v.approved()]
        return sorted(done, key=lambda v: (v.definition.effective_at, v.approved_position))

    def in_force(self, at: datetime) -> Version | None:
        """The version in force at business time ``at`` (at many: :meth:`in_force_now`)."""
        return self.in_force_now()(at)

    def in_force_now(self) -> Callable[[datetime], Version | None]:
        """The version in force at an instant, over the versions approved now, one bisection each.

        The last approved version to take effect by then (of two taking effect together, the
        later approved); None before any.
        """
        ordered = self.approved()
        starts = [v.definition.effective_at for v in ordered]

        def in_force(at: datetime) -> Version | None:
            index = bisect_right(starts, at)  # the last to take effect by ``at``
            return ordered[index - 1] if index else None

        return in_force

    def spans(self) -> list[tuple[Version, datetime, datetime | None]]:
        """For each approved version that was ever in force: [from, until) in business time."""
        ordered = self.approved()
        out: list[tuple[Version, datetime, datetime | None]] = []
        for index, version in enumerate(ordered):
            start = version.definition.effective_at
            later = [v.definition.effective_at for v in ordered[index + 1 :]]
            end = min(later) if later else None
            if end is None or end > start:
                out.append((version, start, end))
        return out

    def status(self, name: str, now: datetime) -> str:
        """proposed, approved by one owner, scheduled, in force or superseded (as of ``now``)."""
        version = self.get(name)
        if not version.approved():
            roles = sorted(version.approvals)
            return f"awaiting {' and '.join(r for r in ROLES if r not in roles)} approval"
        current = self.in_force(now)
        if current is version:
            return "in force"
        if version.definition.effective_at > now:
            return "scheduled"
        return "superseded"


def _valid_approval(version: Version, role: str, actor: str) -> str | None:
    """Why ``actor`` may not approve ``version`` as ``role`` (None: the approval is valid)."""
    if role not in ROLES:
        return f"unknown role {role!r}; a definition is approved as {' or '.join(ROLES)}"
    owner = version.definition.owners[role]
    if actor != owner:
        return f"{actor} is not the {role} owner of version {version.name} (it names {owner})"
    if role in version.approvals:
        by = version.approvals[role].actor
        return f"version {version.name} is already approved by {by} as {role}"
    other = [a for r, a in version.approvals.items() if r != role and a.actor == actor]
    if other:
        return f"{actor} already approved version {version.name} as {other[0].role}"
    return None


class DefinitionBook:
    """Proposes and approves definition versions by recording facts in the ledger."""

    def __init__(self, ledger: Ledger, now: datetime | None = None) -> None:
        """Bind to ``ledger``; ``now`` fixes the business time of the facts (tests)."""
        self.ledger = ledger
        self.now = now

    def _at(self) -> str:
        return (self.now or datetime.now(UTC)).isoformat()

    def propose(self, path: Path, actor: str) -> Definition:
        """Record the definition in ``path`` as proposed; refuses a version that already exists."""
        definition = load_file(path)
        catalogue = Catalogue.load(self.ledger)
        if definition.version in catalogue.versions or definition.version in catalogue.invalid:
            msg = f"{path}: version: {definition.version} is already proposed; name a new version"
            raise DefinitionError(msg)
        fact = parse_fact(
            {
                "type": "definition_proposed",
                "occurred_at": self._at(),
                "source": SOURCE,
                "source_id": f"definition/{definition.version}",
                "actor": actor,
                "version": definition.version,
                "effective_from": definition.effective_from.isoformat(),
                "change_note": definition.change_note,
                "definition": definition.document,
            }
        )
        self.ledger.record([fact])
        return definition

    def approve(self, name: str, role: str, actor: str) -> Version:
        """Record ``actor``'s approval of version ``name`` as ``role``; returns the version."""
        catalogue = Catalogue.load(self.ledger)
        version = catalogue.get(name)
        refusal = _valid_approval(version, role, actor)
        if refusal is not None:
            raise DefinitionError(refusal)
        fact = parse_fact(
            {
                "type": "definition_approved",
                "occurred_at": self._at(),
                "source": SOURCE,
                "source_id": f"definition/{name}/approval/{role}",
                "actor": actor,
                "version": name,
                "role": role,
            }
        )
        result = self.ledger.record([fact])
        if result.duplicates:
            raise DefinitionError(f"version {name} is already approved as {role}")
        return Catalogue.load(self.ledger).get(name)
