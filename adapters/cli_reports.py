"""Report commands (rebuild, project, report): registered by the projections work."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the projection and report commands to the CLI."""
    del commands
