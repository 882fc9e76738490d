"""Silver writes the stream was not told about: seeded history.

`pipeline seed` appends to silver with delta-rs, without a worker, so no micro-batch hands
its rows to the fraud scores and gold tables. The follower finds those commits in silver's
Delta log (their commit info carries `SEED_COMMIT_KEY`) and turns the dates they added
into event-time spans for the downstream refresher, which recomputes them like any late
data: every silver row gets its fraud score, alert and gold windows, seeded or streamed.

The last log version looked at is kept in a small file, written only after the spans it
found are in the refresher's pending file, so a crash in between finds them again
(recomputing is idempotent). Pure Python over the JSON commit files: no Spark.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from contracts.silver import PARTITION_COLUMN, SEED_COMMIT_KEY
from worker.event_spans import EventSpan, merge_spans
from worker.state_files import write_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Found:
    """Spans of the seeded commits up to log version `version` (inclusive)."""

    version: int
    spans: list[EventSpan]
    commits: int


class SilverFollower:
    def __init__(self, silver: Path, mark_file: Path) -> None:
        self._log_dir = silver / "_delta_log"
        self._mark_file = mark_file
        self._seen = self._load_mark()

    def poll(self) -> Found | None:
        """The seeded commits after the mark, or None when there is nothing new."""
        version = self._first_unseen()
        if version is None:
            return None
        days: set[date] = set()
        commits = 0
        last = None
        while (commit := self._log_dir / f"{version:020d}.json").exists():
            added = _seeded_dates(commit)
            if added is not None:
                commits += 1
                days |= added
            last = version
            version += 1
        if last is None:
            return None
        spans = merge_spans(EventSpan(_midnight(d), _midnight(d) + timedelta(days=1))
                            for d in days)
        return Found(last, spans, commits)

    def mark(self, version: int) -> None:
        """Everything up to `version` is handed over."""
        write_atomic(self._mark_file, json.dumps({"version": version}).encode())
        self._seen = version

    def _first_unseen(self) -> int | None:
        if self._seen is not None:
            return self._seen + 1
        if not self._log_dir.is_dir():
            return None
        # First look: from the oldest commit file still in the log.
        versions = [int(p.name[:20]) for p in self._log_dir.glob("*.json")
                    if p.name[:20].isdigit() and len(p.name) == 25]
        return min(versions) if versions else None

    def _load_mark(self) -> int | None:
        try:
            return int(json.loads(self._mark_file.read_text())["version"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("silver follower: unreadable %s (%s); looking at the whole log",
                        self._mark_file, exc)
            return None


def _seeded_dates(commit: Path) -> set[date] | None:
    """The partition dates a seeding commit added rows to; None for any other commit."""
    seeded = False
    days: set[date] = set()
    for line in commit.read_text().splitlines():
        if not line.strip():
            continue
        action = json.loads(line)
        if SEED_COMMIT_KEY in action.get("commitInfo", {}):
            seeded = True
        add = action.get("add")
        if add and add.get("dataChange", True):
            value = (add.get("partitionValues") or {}).get(PARTITION_COLUMN)
            if value:
                days.add(date.fromisoformat(value))
    return days if seeded else None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
