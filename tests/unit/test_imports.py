"""Every module imports on its own, first, in a fresh interpreter (no import cycle bites).

``projections.store``, ``projections.rollup`` and ``projections.build_bulk`` use each other;
whichever a program imports first must work.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for package in ("ledger", "projections", "adapters")
    for path in (ROOT / package).rglob("*.py")
    if path.name != "__init__.py"
)


def test_every_module_imports_first():
    """One interpreter per module, importing only it."""
    assert "projections.build_bulk" in MODULES
    failed = []
    for module in MODULES:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module names
            [sys.executable, "-c", f"import {module}"],
            capture_output=True, text=True, check=False, cwd=ROOT, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            failed.append(f"{module}: {done.stderr.strip().splitlines()[-1]}")
    assert failed == []

