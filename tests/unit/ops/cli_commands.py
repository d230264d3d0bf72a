"""The ``orbit`` subcommands the CLI parser really has (for the image and chart tests)."""

from __future__ import annotations

import argparse

from orbit.platform.cli.main import build_parser


def orbit_subcommands() -> set[str]:
    """Top-level subcommands of ``orbit``, read from the real parser."""
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()
