"""Child interpreters for work spread over a second core (ingest's parsing, the rebuild's roll-ups).

A child is a fresh interpreter (``python -c``) running our own code: unlike :mod:`multiprocessing`
it neither forks the parent (which holds database connections and may run threads) nor imports
the parent's main script again, so any program may use it without a ``__main__`` guard. Its
standard error goes to a temporary file, whose last line says why it failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import IO, Any


def cores() -> int:
    """How many cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def start_child(
    code: str, *args: str, errors: IO[bytes], **streams: Any
) -> subprocess.Popen[bytes]:
    """Run ``code`` (with ``args`` in ``sys.argv``) in a fresh interpreter importing as this one.

    Its standard error goes to ``errors``; ``streams`` are ``stdin``/``stdout`` for ``Popen``.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p or os.curdir for p in sys.path)}
    return subprocess.Popen(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", code, *args], stderr=errors, env=env, **streams
    )


def last_line(errors: IO[bytes]) -> str:
    """The last line a child wrote to ``errors``, as ``": line"`` (``""`` if none)."""
    errors.seek(0)
    lines = errors.read().decode("utf-8", "replace").strip().splitlines()
    return f": {lines[-1]}" if lines else ""
