"""Definition files: a valid file parses, and each kind of mistake is one error naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.definitions import DefinitionError, load_file, parse_definition

VALID = {
    "version": "v1",
    "effective_from": "2025-01-01",
    "change_note": "first",
    "stages": ["inquiry", "mql", "sal", "won", "lost"],
    "terminal": ["won", "lost"],
    "side": ["recycled"],
    "owners": {"marketing": "cmo", "sales": "cro"},
    "transitions": [{"from": ["inquiry"], "to": "mql", "rule": "score >= 50"}],
    "handoff": {"first_activity_within": "5m"},
}


def with_(**changes: object) -> dict[str, object]:
    return {**VALID, **changes}


def test_valid_document_parses():
    """A valid document gives its rule per stage and its SLA in minutes."""
    definition = parse_definition(VALID)
    assert (definition.rule_for("mql").text, definition.sla_minutes) == ("score >= 50", 5)  # type: ignore[union-attr]


def test_toml_file_is_read(tmp_path: Path):
    """A TOML file with a native date parses."""
    path = tmp_path / "d.toml"
    path.write_text(
        'version = "v1"\neffective_from = 2025-01-01\nchange_note = "n"\n'
        'stages = ["inquiry", "mql"]\n'
        '[owners]\nmarketing = "a"\nsales = "b"\n'
        '[[transitions]]\nfrom = ["inquiry"]\nto = "mql"\nrule = "score > 1"\n'
    )
    assert load_file(path).version == "v1"


def test_bad_rule_names_file_key_and_position(tmp_path: Path):
    """A malformed rule in a file is reported with the file, the key and the position."""
    path = tmp_path / "d.json"
    path.write_text(
        '{"version":"v1","effective_from":"2025-01-01","change_note":"n","stages":["inquiry","mql"],'
        '"owners":{"marketing":"a","sales":"b"},'
        '"transitions":[{"from":["inquiry"],"to":"mql","rule":"score >> 1"}]}'
    )
    with pytest.raises(DefinitionError, match=r"d\.json: transitions\[0\]\.rule: position 8"):
        load_file(path)


def test_invalid_toml_is_one_error(tmp_path: Path):
    """A file that is not TOML is refused with the parser's line and column."""
    path = tmp_path / "d.toml"
    path.write_text('version = "v1\n')
    with pytest.raises(DefinitionError, match=r"d\.toml: not valid TOML: .*line 1"):
        load_file(path)


def test_same_owner_for_both_roles_is_refused():
    """The marketing and sales owners must be two different actors."""
    with pytest.raises(DefinitionError, match=r"owners\.sales"):
        parse_definition(with_(owners={"marketing": "x", "sales": "x"}))


def test_transition_to_unknown_stage_is_refused():
    """A transition must lead into a stage of the definition."""
    bad = [{"from": ["inquiry"], "to": "hot", "rule": "score > 1"}]
    with pytest.raises(DefinitionError, match=r"transitions\[0\]\.to"):
        parse_definition(with_(transitions=bad))


def test_unknown_top_level_key_is_refused():
    """A misspelt key is refused rather than ignored."""
    with pytest.raises(DefinitionError, match=r"^stagse: unknown key"):
        parse_definition(with_(stagse=[]))


def test_bad_duration_is_refused():
    """The SLA must be a duration such as 24h."""
    with pytest.raises(DefinitionError, match=r"handoff\.first_activity_within"):
        parse_definition(with_(handoff={"first_activity_within": "soon"}))


def test_terminal_must_be_a_stage():
    """Terminal stages must be among the ordered stages."""
    with pytest.raises(DefinitionError, match=r"terminal\[0\]"):
        parse_definition(with_(terminal=["closed"]))
