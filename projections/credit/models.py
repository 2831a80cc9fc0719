"""Attribution models: how much each touch of a deal's journey weighs (docs/credit.md, "Models").

A *positional* model gives a weight to positions in the journey and a weight to "the rest":

| model | first | lead_creation | opportunity_creation | closed_won | last | rest |
|---|---|---|---|---|---|---|
| first | 1 | | | | | |
| last | | | | | 1 | |
| linear | | | | | | 1 |
| u | 40 | 40 | | | | 20 |
| w | 30 | 30 | 30 | | | 10 |
| full-path | 22.5 | 22.5 | 22.5 | 22.5 | | 10 |

``time-decay`` weighs a touch ``2 ** (-age / half_life)``, its age measured back from the credited
milestone. Custom weights come from a TOML or JSON file (:func:`load_model`), never from code.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

from projections.errors import ReportError

POSITIONS = ("first", "lead_creation", "opportunity_creation", "closed_won", "last")
DEFAULT_HALF_LIFE = Fraction(7)


@dataclass(frozen=True)
class Model:
    """An attribution model: positional weights and a weight for the rest, or a time decay."""

    name: str
    weights: Mapping[str, Fraction] = field(default_factory=dict)
    rest: Fraction = Fraction(0)
    half_life_days: Fraction | None = None

    def describe(self) -> str:
        """The model in one line, with its weights as percentages (shown in every report)."""
        if self.half_life_days is not None:
            return f"{self.name}: weight 2^(-age/{_number(self.half_life_days)} days)"
        total = sum(self.weights.values(), self.rest)
        parts = [f"{p} {_number(100 * w / total)}%" for p, w in self.weights.items() if w]
        if self.rest:
            parts.append(f"rest {_number(100 * self.rest / total)}%")
        return f"{self.name}: {', '.join(parts)}"


def _number(value: Fraction) -> str:
    """A fraction as a short decimal (40, 22.5, 33.33)."""
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return text or "0"


def _pct(*values: str) -> dict[str, Fraction]:
    return {p: Fraction(Decimal(v)) for p, v in zip(POSITIONS, values, strict=False) if v != "0"}


BUILTIN: dict[str, Model] = {
    "first": Model("first", {"first": Fraction(1)}),
    "last": Model("last", {"last": Fraction(1)}),
    "linear": Model("linear", rest=Fraction(1)),
    "u": Model("u", _pct("40", "40"), Fraction(20)),
    "w": Model("w", _pct("30", "30", "30"), Fraction(10)),
    "full-path": Model("full-path", _pct("22.5", "22.5", "22.5", "22.5"), Fraction(10)),
}
MODEL_NAMES = (*BUILTIN, "time-decay")


def _positive_days(value: Any, where: str) -> Fraction:
    days = _weight(value, where)
    if days <= 0:
        raise ReportError(f"{where}: the half-life must be more than 0 days")
    return days


def named_model(name: str, half_life_days: Any = DEFAULT_HALF_LIFE) -> Model:
    """The built-in model called ``name`` (``time-decay`` with the given half-life in days)."""
    if name == "time-decay":
        return Model("time-decay", half_life_days=_positive_days(half_life_days, "--half-life"))
    try:
        return BUILTIN[name]
    except KeyError:
        raise ReportError(f"unknown model {name!r}; use one of {', '.join(MODEL_NAMES)}") from None


def _weight(value: Any, where: str) -> Fraction:
    """A non-negative weight from a number or a decimal string (floats by their shortest repr)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Fraction, Decimal)):
        raise ReportError(f"{where}: expected a number, got {value!r}")
    try:
        number = Fraction(Decimal(repr(value) if isinstance(value, float) else str(value)))
    except (InvalidOperation, ValueError):
        raise ReportError(f"{where}: {value!r} is not a number") from None
    if number < 0:
        raise ReportError(f"{where}: weights must not be negative, got {value!r}")
    return number


def model_from_mapping(doc: Mapping[str, Any], where: str) -> Model:
    """A custom model from a parsed weights file (see docs/credit.md, "Custom weights")."""
    allowed = {"name", "half_life_days", "rest", *POSITIONS}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ReportError(f"{where}: unknown key {unknown[0]!r}; use {', '.join(sorted(allowed))}")
    name = str(doc.get("name") or "custom")
    if "half_life_days" in doc:
        if set(doc) - {"name", "half_life_days"}:
            raise ReportError(f"{where}: a time-decay model takes only name and half_life_days")
        return Model(name, half_life_days=_positive_days(doc["half_life_days"], where))
    weights = {p: _weight(doc[p], f"{where}: {p}") for p in POSITIONS if p in doc}
    rest = _weight(doc.get("rest", 0), f"{where}: rest")
    if not any(weights.values()) and not rest:
        raise ReportError(f"{where}: give at least one position or rest a weight above 0")
    return Model(name, {p: w for p, w in weights.items() if w}, rest)


def load_model(path: Path) -> Model:
    """A custom model from a ``.toml`` or ``.json`` weights file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ReportError(f"--weights {path}: {error.strerror or error}") from None
    try:
        doc = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise ReportError(
            f"--weights {path}: not valid {path.suffix[1:] or 'TOML'}: {error}"
        ) from None
    if not isinstance(doc, dict):
        raise ReportError(f"--weights {path}: expected a table of weights")
    return model_from_mapping(doc, f"--weights {path}")
