"""The worker's own profile: micro-batch step timings it logs at DEBUG level
(`micro-batch N: parse+count=..s bronze=..s silver=..s quarantine+dlq=..s quality=..s`,
worker/medallion.py StepTimer; a step the micro-batch had nothing for is left out) and
the recomputes its downstream refresher thread runs beside the micro-batches
(`downstream: S span(s) dashboard=..s fraud=..s gold=..s`, worker/downstream.py; one
recompute covers every micro-batch that finished while the previous one ran)."""

from __future__ import annotations

import re
from typing import Any

_LINE = re.compile(r"micro-batch (\d+): (.+)$", re.MULTILINE)
_STEP = re.compile(r"(\S+)=([0-9.]+)s")
_DOWNSTREAM = re.compile(r"downstream: \d+ span\(s\) (.*)$", re.MULTILINE)
# The refresher's steps, as the profile names them.
DOWNSTREAM_STEPS = {"dashboard": "dashboard (own thread)",
                    "fraud": "fraud scores (own thread)",
                    "gold": "gold tables (own thread)"}


def step_timings(log_text: str) -> dict[str, Any]:
    """Per step: total seconds over the micro-batches in `log_text`, and their count."""
    totals: dict[str, float] = {}
    batches = 0
    for match in _LINE.finditer(log_text):
        batches += 1
        for name, seconds in _STEP.findall(match.group(2)):
            totals[name] = totals.get(name, 0.0) + float(seconds)
    recomputes = 0
    for match in _DOWNSTREAM.finditer(log_text):
        recomputes += 1
        for name, seconds in _STEP.findall(match.group(1)):
            step = DOWNSTREAM_STEPS.get(name, f"{name} (own thread)")
            totals[step] = totals.get(step, 0.0) + float(seconds)
    return _profile(totals, batches, recomputes)


def merge(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    """Several `step_timings` results as one."""
    totals: dict[str, float] = {}
    for profile in profiles:
        for name, seconds in profile.get("seconds", {}).items():
            totals[name] = totals.get(name, 0.0) + seconds
    return _profile(totals, sum(int(p.get("micro_batches", 0)) for p in profiles),
                    sum(int(p.get("downstream_recomputes", 0)) for p in profiles))


def _profile(totals: dict[str, float], batches: int, recomputes: int) -> dict[str, Any]:
    whole = sum(totals.values())
    return {
        "micro_batches": batches,
        "downstream_recomputes": recomputes,
        "seconds": {k: round(v, 2) for k, v in totals.items()},
        "share": {k: round(v / whole, 3) for k, v in totals.items()} if whole else {},
    }


_REBUILT = re.compile(r"registry rebuilt from (\d+) events in ([0-9.]+)s")


def registry_rebuild(log_text: str) -> tuple[int, float] | None:
    """(events, seconds) of the worker's last 'registry rebuilt' log line."""
    found = _REBUILT.findall(log_text)
    if not found:
        return None
    events, seconds = found[-1]
    return int(events), float(seconds)
