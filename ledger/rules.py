"""The qualification rule language: a tokenizer, a recursive-descent parser and an evaluator.

A rule is a small boolean expression over a lead (docs/definitions.md, "The rule language")::

    score >= 50 and fit in ("A", "B") and has(company)
    count(touches where channel = "webinar") >= 1 or not lead_source = "partner"

Nothing is ever handed to ``eval``: the text is tokenized, parsed into the node classes below and
interpreted over a :class:`Subject`. A malformed rule raises :class:`RuleError` with the 1-based
character position of the offending token. Evaluation keeps provenance: every condition reports
whether it held and the facts (``source/source_id``) that supplied the values it looked at.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from ledger.errors import RevledgerError

KEYWORDS = frozenset({"and", "or", "not", "in", "has", "count", "touches", "where"})
TOUCH_FIELDS = ("channel", "touch_type", "campaign_id")
COMPARATORS = ("=", "!=", "<", "<=", ">", ">=")
MAX_LENGTH = 2000
TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?![A-Za-z_0-9.]))
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<op>==|!=|<=|>=|=|<|>)
      | (?P<punct>[(),])""",
    re.VERBOSE,
)


class RuleError(RevledgerError):
    """A rule is malformed; ``position`` is the 1-based character where the problem starts."""

    def __init__(self, reason: str, position: int) -> None:
        """Keep the position apart so callers can prefix the file and key."""
        super().__init__(f"position {position}: {reason}")
        self.reason = reason
        self.position = position


@dataclass(frozen=True)
class Token:
    """One token: its kind (number, string, name, keyword, op, punct, end), text and position."""

    kind: str
    text: str
    position: int
    value: Any = None


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token; refuse any unknown character."""
    if len(text) > MAX_LENGTH:
        raise RuleError(f"a rule is at most {MAX_LENGTH} characters", MAX_LENGTH + 1)
    tokens: list[Token] = []
    index = 0
    while index < len(text):
        match = TOKEN.match(text, index)
        if match is None:
            opener = text[index]
            reason = "unterminated string" if opener in "\"'" else f"unexpected {opener!r}"
            raise RuleError(reason, index + 1)
        kind, lexeme = match.lastgroup or "", match.group()
        position = index + 1
        index = match.end()
        if kind == "space":
            continue
        if kind == "number":
            tokens.append(Token(kind, lexeme, position, Decimal(lexeme)))
        elif kind == "string":
            body = re.sub(r"\\(.)", r"\1", lexeme[1:-1])
            tokens.append(Token(kind, lexeme, position, body))
        elif kind == "name" and lexeme in KEYWORDS:
            tokens.append(Token("keyword", lexeme, position))
        else:
            tokens.append(Token(kind, "=" if lexeme == "==" else lexeme, position))
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# --- Evaluation inputs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Touch:
    """One touch as a rule sees it: its fields and the fact that recorded it."""

    fields: dict[str, Any]
    ref: str


class Subject(Protocol):
    """What a rule is evaluated over: named values (with their facts) and the touches."""

    def lookup(self, name: str) -> tuple[Any, tuple[str, ...]]:
        """The value of ``name`` (None when unknown) and the facts that supplied it."""

    @property
    def touches(self) -> Sequence[Touch]:
        """Every touch known so far."""


@dataclass(frozen=True)
class TouchSubject:
    """A single touch, as the subject of a ``where`` clause."""

    touch: Touch

    def lookup(self, name: str) -> tuple[Any, tuple[str, ...]]:
        """The touch's field ``name``."""
        return self.touch.fields.get(name), (self.touch.ref,)

    @property
    def touches(self) -> Sequence[Touch]:
        """A touch has no touches of its own."""
        return ()


@dataclass
class Outcome:
    """Whether a rule held, and each condition that held or failed with the facts it used."""

    met: bool
    satisfied: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    failed: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


# --- The syntax tree -----------------------------------------------------------------------------

Value = tuple[Any, tuple[str, ...]]


@dataclass(frozen=True)
class Literal:
    """A number or string written in the rule."""

    value: Any

    def get(self, _subject: Subject) -> Value:
        """The literal itself; no fact supplied it."""
        return self.value, ()


@dataclass(frozen=True)
class Name:
    """A lead's value: score, fit, a captured field or a custom attribute."""

    name: str

    def get(self, subject: Subject) -> Value:
        """The subject's value of this name."""
        return subject.lookup(self.name)


@dataclass(frozen=True)
class Count:
    """The number of touches (matching ``where`` when given)."""

    where: Node | None

    def get(self, subject: Subject) -> Value:
        """How many touches match, and the facts of those that do."""
        refs = tuple(
            t.ref
            for t in subject.touches
            if self.where is None or self.where.holds(TouchSubject(t), None)
        )
        return len(refs), refs


Operand = Literal | Name | Count


@dataclass(frozen=True)
class Condition:
    """An atomic condition: a comparison, a membership test or ``has(name)``."""

    text: str
    test: Callable[[Subject], tuple[bool, tuple[str, ...]]]

    def holds(self, subject: Subject, outcome: Outcome | None) -> bool:
        """Evaluate, noting the result with its facts in ``outcome`` when given."""
        held, refs = self.test(subject)
        if outcome is not None:
            (outcome.satisfied if held else outcome.failed).append((self.text, refs))
        return held


@dataclass(frozen=True)
class Junction:
    """``and`` / ``or`` of several nodes; every branch is evaluated so provenance is complete."""

    kind: str
    items: tuple[Node, ...]

    def holds(self, subject: Subject, outcome: Outcome | None) -> bool:
        """All (and) or any (or) of the branches hold (without ``outcome``, as far as it takes)."""
        if outcome is None:
            branches = (item.holds(subject, None) for item in self.items)
            return all(branches) if self.kind == "and" else any(branches)
        results = [item.holds(subject, outcome) for item in self.items]
        return all(results) if self.kind == "and" else any(results)


@dataclass(frozen=True)
class Negation:
    """``not`` a node."""

    item: Node

    def holds(self, subject: Subject, outcome: Outcome | None) -> bool:
        """The node does not hold."""
        return not self.item.holds(subject, outcome)


Node = Condition | Junction | Negation


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    return Decimal(str(value)) if isinstance(value, float) else Decimal(value)


def compare(left: Any, op: str, right: Any) -> bool:
    """Compare two values; unknown (None) values and mismatched kinds never satisfy a condition."""
    if left is None or right is None:
        return False
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return _ordered(a, op, b)
    if isinstance(left, str) and isinstance(right, str):
        return _ordered(left, op, right)
    return False


COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _ordered(a: Any, op: str, b: Any) -> bool:
    return bool(COMPARISONS[op](a, b))


@dataclass(frozen=True)
class Rule:
    """A parsed rule: its text and syntax tree."""

    text: str
    root: Node
    # what it looks at: the lead's values it names, and "touches" if it counts touches (a
    # keyword, never a name)
    reads: frozenset[str] = frozenset()

    def evaluate(self, subject: Subject) -> Outcome:
        """Evaluate over ``subject``, with every condition's result and facts."""
        outcome = Outcome(met=False)
        outcome.met = self.root.holds(subject, outcome)
        return outcome

    def holds(self, subject: Subject) -> bool:
        """Whether the rule holds over ``subject`` (:meth:`evaluate`'s ``met``, sooner)."""
        return self.root.holds(subject, None)


class Parser:
    """Recursive descent over the tokens of one rule (grammar: docs/definitions.md)."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        """Start at the first token; ``text`` supplies each condition's own wording."""
        self.text = text
        self.tokens = tokens
        self.index = 0
        self.in_touches = False
        self.reads: set[str] = set()  # the names outside count(), and "touches" if counted

    @property
    def token(self) -> Token:
        """The current token."""
        return self.tokens[self.index]

    def fail(self, reason: str, token: Token | None = None) -> RuleError:
        """An error at ``token`` (default: the current one)."""
        token = token or self.token
        found = "the end of the rule" if token.kind == "end" else repr(token.text)
        return RuleError(f"{reason}, found {found}", token.position)

    def take(self, kind: str, text: str | None = None) -> Token | None:
        """Consume and return the current token if it matches, else None."""
        token = self.token
        if token.kind == kind and (text is None or token.text == text):
            self.index += 1
            return token
        return None

    def expect(self, kind: str, text: str, reason: str) -> Token:
        """Consume the expected token or fail with ``reason``."""
        token = self.take(kind, text)
        if token is None:
            raise self.fail(reason)
        return token

    def rule(self) -> Node:
        """Rule := or_expr END."""
        node = self.disjunction()
        if self.token.kind != "end":
            raise self.fail("expected 'and', 'or' or the end of the rule")
        return node

    def disjunction(self) -> Node:
        """or_expr := and_expr ('or' and_expr)*."""
        items = [self.conjunction()]
        while self.take("keyword", "or"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Junction("or", tuple(items))

    def conjunction(self) -> Node:
        """and_expr := unary ('and' unary)*."""
        items = [self.unary()]
        while self.take("keyword", "and"):
            items.append(self.unary())
        return items[0] if len(items) == 1 else Junction("and", tuple(items))

    def unary(self) -> Node:
        """Unary := 'not' unary | '(' or_expr ')' | condition."""
        if self.take("keyword", "not"):
            return Negation(self.unary())
        if self.take("punct", "("):
            node = self.disjunction()
            self.expect("punct", ")", "expected ')'")
            return node
        return self.condition()

    def condition(self) -> Condition:
        """Condition := 'has' '(' NAME ')' | operand (COMPARATOR operand | ['not'] 'in' list)."""
        start = self.token
        if self.take("keyword", "has"):
            self.expect("punct", "(", "expected '(' after has")
            name = self.name()
            self.expect("punct", ")", "expected ')'")
            return Condition(self._source(start), _has(name))
        left = self.operand()
        negate = self.take("keyword", "not") is not None
        if negate or self.token.text == "in":
            self.expect("keyword", "in", "expected 'in' after 'not'")
            test = _member(left, self.values(), negate=negate)
            return Condition(self._source(start), test)
        op = self.take("op")
        if op is None:
            raise self.fail("expected a comparison (=, !=, <, <=, >, >=, in, not in)")
        right = self.operand()
        return Condition(self._source(start), _comparison(left, op.text, right))

    def operand(self) -> Operand:
        """Operand := NUMBER | STRING | NAME | 'count' '(' 'touches' ['where' or_expr] ')'."""
        token = self.token
        if token.kind in {"number", "string"}:
            self.index += 1
            return Literal(token.value)
        if self.take("keyword", "count"):
            if self.in_touches:
                raise self.fail("count() cannot be nested inside a where clause", token)
            self.expect("punct", "(", "expected '(' after count")
            self.expect("keyword", "touches", "expected 'touches'")
            where = None
            if self.take("keyword", "where"):
                self.in_touches = True
                where = self.disjunction()
                self.in_touches = False
            self.expect("punct", ")", "expected ')'")
            self.reads.add("touches")
            return Count(where)
        return Name(self.name())

    def name(self) -> str:
        """A field or attribute name (inside ``where``: a touch field)."""
        token = self.token
        if token.kind != "name":
            raise self.fail("expected a value, a name or count(touches ...)")
        if self.in_touches and token.text not in TOUCH_FIELDS:
            raise self.fail(f"a touch has only {', '.join(TOUCH_FIELDS)}")
        self.index += 1
        if not self.in_touches:
            self.reads.add(token.text)
        return token.text

    def values(self) -> tuple[Any, ...]:
        """List := '(' literal (',' literal)* ')'."""
        self.expect("punct", "(", "expected '(' to open the list")
        items: list[Any] = []
        while True:
            token = self.token
            if token.kind not in {"number", "string"}:
                raise self.fail("expected a number or a string in the list")
            self.index += 1
            items.append(token.value)
            if self.take("punct", ")"):
                return tuple(items)
            self.expect("punct", ",", "expected ',' or ')'")

    def _source(self, start: Token) -> str:
        """The rule's own text from ``start`` to the last consumed token."""
        last = self.tokens[self.index - 1]
        return self.text[start.position - 1 : last.position - 1 + len(last.text)].strip()


def _has(name: str) -> Callable[[Subject], tuple[bool, tuple[str, ...]]]:
    def test(subject: Subject) -> tuple[bool, tuple[str, ...]]:
        value, refs = subject.lookup(name)
        return value not in (None, "", [], {}), refs

    return test


def _member(
    left: Operand, values: tuple[Any, ...], *, negate: bool
) -> Callable[[Subject], tuple[bool, tuple[str, ...]]]:
    def test(subject: Subject) -> tuple[bool, tuple[str, ...]]:
        value, refs = left.get(subject)
        if value is None:
            return False, refs
        found = any(compare(value, "=", candidate) for candidate in values)
        return found != negate, refs

    return test


def _comparison(
    left: Operand, op: str, right: Operand
) -> Callable[[Subject], tuple[bool, tuple[str, ...]]]:
    def test(subject: Subject) -> tuple[bool, tuple[str, ...]]:
        a, refs_a = left.get(subject)
        b, refs_b = right.get(subject)
        return compare(a, op, b), tuple(dict.fromkeys((*refs_a, *refs_b)))

    return test


def parse_rule(text: str) -> Rule:
    """Parse ``text`` into a :class:`Rule`, or raise :class:`RuleError` with the position."""
    if not text.strip():
        raise RuleError("the rule is empty", 1)
    parser = Parser(text, tokenize(text))
    root = parser.rule()
    return Rule(text, root, frozenset(parser.reads))
