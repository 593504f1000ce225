"""`receiver simulate` (contract section 7)."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(commands: Any, *, config_help: str) -> None:
    """Register this module's subcommands on the CLI's subparsers."""


__all__ = ["add_commands", "argparse"]
