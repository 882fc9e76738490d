"""The tables recomputed from silver behind the stream: the real-time dashboard, the fraud
scores and the gold business tables, in that order (the customer table reads the fraud
scores).

Each is a pure function of silver over event-time windows, so bringing one up to date is
"recompute the windows these spans touch and replace them", idempotent however often it
runs. A write through the medallion hands over what it touched (`DownstreamWork`); the
stream does that through `worker.downstream_refresher` (off the ingest path, crash-safe),
a backfill directly after each chunk.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from contracts.tables import DOWNSTREAM_TABLES
from worker.analytics import AffectedWindows
from worker.event_spans import EventSpan, merge_spans

log = logging.getLogger(__name__)


@dataclass
class DownstreamWork:
    """What one write touched: the dashboard's windows (on-time rows only) and the
    event-time spans of its new silver rows (rows within the lateness horizon)."""

    dashboard: list[AffectedWindows] = field(default_factory=list)
    spans: list[EventSpan] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.dashboard or self.spans)

    def as_json(self) -> dict[str, Any]:
        return {"dashboard": [{name: getattr(w, name).isoformat() for name in _WINDOW_FIELDS}
                              for w in self.dashboard],
                "spans": [s.as_json() for s in self.spans]}

    @classmethod
    def from_json(cls, row: Any) -> DownstreamWork:
        if isinstance(row, dict) and "spans" in row:
            return cls([_window(w) for w in row.get("dashboard", [])],
                       [EventSpan.from_json(s) for s in row["spans"]])
        # A pending file from before fraud and gold: one dashboard span per entry.
        return cls([_window(row)], [])


def merge_work(items: list[DownstreamWork]) -> DownstreamWork:
    from worker.analytics import merge_spans as merge_windows

    return DownstreamWork(merge_windows([w for item in items for w in item.dashboard]),
                          merge_spans(s for item in items for s in item.spans))


class _Recomputes(Protocol):
    def recompute(self, spans: list[Any]) -> Any: ...


class _Model(Protocol):
    def refresh(self) -> None: ...


class Downstream:
    def __init__(self, dashboard: _Recomputes, fraud: _Recomputes | None,
                 gold: _Recomputes | None, model: _Model | None) -> None:
        self.dashboard = dashboard
        self.fraud = fraud
        self.gold = gold
        self.model = model
        self.spark: Any = getattr(dashboard, "spark", None)
        # Stream and backfills both apply work: one at a time, so the fraud alerts and
        # table replacements of the same spans never interleave.
        self._lock = threading.Lock()

    def refresh_model(self) -> None:
        """Pick up a newly trained model (cheap when there is none)."""
        if self.model is None:
            return
        try:
            self.model.refresh()
        except Exception:  # a model problem never stops the tables
            log.exception("fraud model refresh failed")

    def apply(self, work: DownstreamWork) -> None:
        """Bring every downstream table up to date with `work`; raises on failure (the
        caller keeps the work and retries: every step is idempotent)."""
        if not work:
            return
        started = time.monotonic()
        with self._lock:
            self.refresh_model()
            steps = []
            if work.dashboard:
                self.dashboard.recompute(work.dashboard)
                steps.append(f"dashboard={time.monotonic() - started:.2f}s")
            if work.spans:
                for name, part in (("fraud", self.fraud), ("gold", self.gold)):
                    if part is not None:
                        mark = time.monotonic()
                        part.recompute(work.spans)
                        steps.append(f"{name}={time.monotonic() - mark:.2f}s")
        log.debug("downstream: %d span(s) %s", len(work.spans), " ".join(steps))


DOWNSTREAM_NAMES: tuple[str, ...] = tuple(spec.name for spec in DOWNSTREAM_TABLES)
_WINDOW_FIELDS = ("source_start", "source_end", "first_window_start", "last_window_start")


def _window(row: dict[str, str]) -> AffectedWindows:
    return AffectedWindows(**{name: datetime.fromisoformat(row[name]) for name in _WINDOW_FIELDS})
