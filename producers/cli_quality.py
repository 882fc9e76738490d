"""`pipeline quality alerts|status`: data-quality expectations."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `pipeline` app."""
