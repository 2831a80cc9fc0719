"""The qualification rule language: parsing, positions of errors, and evaluation with provenance."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.rules import RuleError, Touch, compare, parse_rule


class Lead:
    """A minimal subject: values with a fact each, and touches."""

    def __init__(self, touches: list[Touch] | None = None, **values: Any) -> None:
        """Hold the lead's ``values`` by name and its ``touches``."""
        self.values = values
        self.touches = touches or []

    def lookup(self, name: str) -> tuple[Any, tuple[str, ...]]:
        """The value of ``name`` and the fact it comes from, or ``(None, ())``."""
        return (self.values[name], (f"src/{name}",)) if name in self.values else (None, ())


def holds(rule: str, lead: Lead) -> bool:
    return parse_rule(rule).evaluate(lead).met


def test_mql_rule_holds_for_a_qualifying_lead():
    """The canonical MQL rule holds when score, fit and company all qualify."""
    lead = Lead(score=72, fit="A", company="Acme")
    assert holds('score >= 50 and fit in ("A", "B") and has(company)', lead)


def test_failed_condition_is_reported_with_its_fact():
    """A failing condition is listed as failed, naming the fact that supplied its value."""
    outcome = parse_rule('score >= 50 and fit = "A"').evaluate(Lead(score=40, fit="A"))
    assert outcome.failed == [("score >= 50", ("src/score",))]


def test_touch_count_with_where_clause():
    """count(touches where ...) counts only the matching touches."""
    touches = [Touch({"channel": "webinar"}, "t/1"), Touch({"channel": "email"}, "t/2")]
    outcome = parse_rule('count(touches where channel = "webinar") >= 1').evaluate(Lead(touches))
    assert outcome.satisfied == [('count(touches where channel = "webinar") >= 1', ("t/1",))]


def test_or_and_not_precedence():
    """'and' binds tighter than 'or', and 'not' tighter than both."""
    assert holds('not fit = "D" and score > 90 or has(company)', Lead(fit="D", company="x"))


def test_missing_value_never_satisfies_a_comparison():
    """A comparison on an unknown value is false, even with != or not in."""
    assert not holds('fit != "A"', Lead())


def test_not_in_list():
    """'not in' holds when the value is absent from the list."""
    assert holds('fit not in ("C", "D")', Lead(fit="A"))


def test_numbers_and_strings_do_not_compare():
    """A string never equals a number."""
    assert not compare("50", "=", 50)


def test_decimal_literals_compare_with_integers():
    """Decimal literals compare numerically with integer scores."""
    assert holds("score > 49.5", Lead(score=50))


def test_single_quoted_strings_with_escapes():
    """Strings may use single quotes and backslash escapes."""
    assert holds(r"company = 'O\'Brien Ltd'", Lead(company="O'Brien Ltd"))


def test_dotted_attribute_names_parse():
    """attributes.title is a valid name."""
    assert parse_rule('attributes.title = "CFO"').text == 'attributes.title = "CFO"'


@pytest.mark.parametrize(
    ("rule", "position"),
    [
        ("score >", 8),
        ("score >= 50 and", 16),
        ('fit in ("A" "B")', 13),
        ("fit in (A)", 9),
        ('company = "Acme', 11),
        ("score # 3", 7),
        ("score 50", 7),
        ("(score > 1", 11),
        ("score > 1)", 10),
        ("count(touches where score > 1) > 0", 21),
        ("count(touches where count(touches) > 1) > 0", 21),
        ("has(3)", 5),
        ("score >= 50 and __import__('os')", 27),
    ],
)
def test_malformed_rule_reports_position(rule: str, position: int):
    """A malformed rule is refused with the 1-based position of the offending character."""
    with pytest.raises(RuleError) as caught:
        parse_rule(rule)
    assert caught.value.position == position


def test_empty_rule_is_refused():
    """An empty rule is an error at position 1."""
    with pytest.raises(RuleError, match="position 1"):
        parse_rule("   ")


def test_overlong_rule_is_refused():
    """A rule beyond the maximum length is refused."""
    with pytest.raises(RuleError, match="at most"):
        parse_rule("score > 1 and " * 200 + "score > 1")


def test_a_rule_names_what_it_reads():
    """The names a rule compares (not a touch's own fields), and touches when it counts them."""
    rule = parse_rule('score >= 50 and has(company) and count(touches where channel = "x") > 0')
    assert rule.reads == {"score", "company", "touches"}
    assert parse_rule('attributes.tier in ("gold") or 1 = 1').reads == {"attributes.tier"}
    assert parse_rule("1 = 1").reads == frozenset()
