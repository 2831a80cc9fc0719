"""Stream commands (stream nats): registered by the adapters work."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the commands to the CLI."""
    del commands
