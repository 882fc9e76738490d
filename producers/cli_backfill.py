"""`pipeline backfill ...`: replay a Kafka range through every layer."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `pipeline` app."""
