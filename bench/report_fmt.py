"""Formatting shared by the terminal table and docs/benchmarks.md: headline rows, lookups
into the results, numbers with units and ratios."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Headline:
    measurement: str
    figure: str
    value: str
    baseline: str
    ratio: str


def get(data: Any, *keys: str) -> Any:
    """data[k1][k2]..., or None as soon as a level is missing or not a dict."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int | float):
        if unit == "rec/s":
            return f"{value:,.0f} rec/s"
        text = f"{value:,.{digits}f}"
        return f"{text} {unit}".strip()
    return str(value)


def ratio(value: Any, baseline: Any, pattern: str = "{:.2f}x") -> str:
    if not isinstance(value, int | float) or not isinstance(baseline, int | float) or \
            not baseline:
        return "n/a"
    return pattern.format(value / baseline)
