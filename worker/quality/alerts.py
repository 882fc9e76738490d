"""Threshold alerts over a rolling window of micro-batches.

Per expectation: an alert opens when more than `threshold` of the rows it checked failed
over its last `window` micro-batches (`quality.alert`), and closes once the failure rate is
at or below the threshold over the `window` micro-batches after it opened
(`quality.recovered`). Pure bookkeeping: the caller publishes what `observe` returns.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime

from worker.quality.checks import Outcome
from worker.quality.expectations import Expectation


@dataclass
class AlertChange:
    opened: bool            # True: quality.alert, False: quality.recovered
    expectation: Expectation
    rows_checked: int
    rows_failed: int
    micro_batch_id: int
    opened_at: datetime
    recovered_at: datetime | None = None

    @property
    def failure_rate(self) -> float:
        return self.rows_failed / self.rows_checked if self.rows_checked else 0.0


@dataclass
class _State:
    window: deque[tuple[int, int]]
    opened_at: datetime | None = None
    since_open: int = 0


class AlertTracker:
    def __init__(self, expectations: tuple[Expectation, ...]) -> None:
        self._states = {e.key: _State(deque(maxlen=e.window)) for e in expectations}

    def seed(self, history: dict[str, list[tuple[int, int]]],
             open_alerts: dict[str, datetime]) -> None:
        """Resume from the persisted metrics and the alerts the event log has open."""
        for key, state in self._states.items():
            state.window.extend(history.get(key, []))
            if key in open_alerts:
                state.opened_at = open_alerts[key]
                state.since_open = 0

    def open_alerts(self) -> list[str]:
        return [key for key, state in self._states.items() if state.opened_at is not None]

    def observe(self, outcomes: list[Outcome], micro_batch_id: int,
                now: datetime) -> list[AlertChange]:
        changes = []
        for outcome in outcomes:
            e = outcome.expectation
            state = self._states.get(e.key)
            if state is None:
                continue
            state.window.append((outcome.rows_checked, outcome.rows_failed))
            checked = sum(c for c, _ in state.window)
            failed = sum(f for _, f in state.window)
            above = checked > 0 and failed / checked > e.threshold
            if state.opened_at is None:
                if above:
                    state.opened_at, state.since_open = now, 0
                    changes.append(AlertChange(True, e, checked, failed, micro_batch_id, now))
                continue
            state.since_open += 1
            if state.since_open >= e.window and not above:
                changes.append(AlertChange(False, e, checked, failed, micro_batch_id,
                                           state.opened_at, recovered_at=now))
                state.opened_at = None
        return changes
