"""A rule's outcome over the fact types it reads equals its outcome over every trigger."""

from __future__ import annotations

import pytest

from ledger.rules import parse_rule
from projections.qualification import TRIGGERS, LeadView, facts_read
from tests.factories import fact, stage

FACTS = [
    fact("lead_captured", "c1", "2025-01-01T00:00:00Z", lead_id="L", email="a@b.c",
         company="Acme", lead_source="web", attributes={"tier": "gold", "score": 10}),
    fact("touch_recorded", "t1", "2025-01-02T00:00:00Z", lead_id="L", channel="webinar",
         touch_type="attended"),
    fact("score_changed", "s1", "2025-01-03T00:00:00Z", lead_id="L", score=72,
         model_version="m1", fit="B"),
    stage("L", "mql", "g1", "2025-01-04T00:00:00Z"),
    fact("lead_updated", "u1", "2025-01-05T00:00:00Z", lead_id="L",
         attributes={"tier": "silver", "fit": "D"}),
    fact("touch_recorded", "t2", "2025-01-06T00:00:00Z", lead_id="L", channel="email",
         touch_type="click"),
]  # fmt: skip

RULES = [
    "score >= 60",
    'fit in ("A", "B")',
    'attributes.tier = "gold"',
    'has(company) and lead_source = "web"',
    'count(touches where channel = "webinar") >= 1',
    "count(touches) >= 2 or attributes.score > 5",
    "1 = 1",
    'not (score >= 80 or fit = "B") and has(email)',
    '(score < 50 or has(company)) and not attributes.tier = "gold"',
]


@pytest.mark.parametrize("text", RULES)
def test_a_view_of_the_facts_a_rule_reads_gives_its_outcome(text: str):
    """At every instant: the same met, and the same conditions with the same facts."""
    rule = parse_rule(text)
    kept = facts_read([rule])
    assert kept <= TRIGGERS
    for upto in range(1, len(FACTS) + 1):
        every, read = LeadView(), LeadView()
        for f in FACTS[:upto]:
            every.apply(f)
            if f.type_name in kept:
                read.apply(f)
        assert rule.evaluate(read) == rule.evaluate(every), (text, upto)
        assert rule.holds(read) is rule.holds(every) is rule.evaluate(every).met, (text, upto)


def test_only_a_rule_that_counts_touches_reads_them():
    """Touches only for count(touches ...); a score's values from score_changed too."""
    assert facts_read([parse_rule("count(touches) > 1")]) == {"touch_recorded"}
    assert facts_read([parse_rule("fit = 1")]) == {"lead_captured", "lead_updated",
                                                    "score_changed"}  # fmt: skip
    assert facts_read([parse_rule("company = 1")]) == {"lead_captured", "lead_updated"}
