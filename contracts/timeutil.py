"""The one UTC normaliser: every timestamp the project stores or compares is UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime) -> datetime:
    """A naive datetime is taken as UTC (the worker pins Spark's session time zone to UTC,
    and the contract reads a timestamp without an offset as UTC); an aware one is
    converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
