"""Keeps the dashboard fresh off the ingest path.

The dashboard upsert used to run inside every micro-batch and was most of a steady
micro-batch's time (docs/performance-log.md). Now a micro-batch hands the windows it touched
to this thread and returns, so Spark can start the next one. The thread folds whatever spans
arrived while it was busy into one upsert, so the dashboard trails the transactions table by
about one upsert and catches up whatever the stream's pace. Closing applies what is queued,
so once the stream has stopped the dashboard covers every row it wrote.

Spans not yet applied are kept in a small JSON file next to the query's checkpoint. It is
written before the micro-batch returns, that is before Spark commits the micro-batch's
offsets, so a crash at any point either replays the micro-batch (which hands its span
over again) or leaves the span in the file for the next start to apply.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import datetime
from pathlib import Path

from worker.analytics import AffectedWindows, merge_spans
from worker.dashboard import DashboardUpdater

log = logging.getLogger(__name__)

_MAX_BACKOFF_SECONDS = 30.0


class DashboardRefresher:
    def __init__(self, updater: DashboardUpdater, pending_file: Path, pool: str) -> None:
        self._updater = updater
        self._file = pending_file
        self._pool = pool
        self._cond = threading.Condition()
        self._waiting: list[AffectedWindows] = load_spans(pending_file)
        self._merging: list[AffectedWindows] = []
        self._closing = False
        self._failures = 0
        if self._waiting:
            log.info("dashboard: %d span(s) left by the last run, applying them first",
                     len(self._waiting))
        self._thread = threading.Thread(target=self._run, name="dashboard-refresh",
                                        daemon=True)
        self._thread.start()

    def submit(self, span: AffectedWindows) -> None:
        """Queue a micro-batch's windows; returns once they are on disk."""
        with self._cond:
            self._waiting.append(span)
            self._save()
            self._cond.notify_all()

    def close(self, timeout: float) -> bool:
        """Apply what is queued and stop; False on timeout (the spans stay on disk for the
        next start)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("dashboard: still upserting after %.0f s; leaving it", timeout)
            return False
        return True

    def _run(self) -> None:
        # The upsert is part of the stream's work, so it runs in the stream's pool.
        self._updater.spark.sparkContext.setLocalProperty("spark.scheduler.pool", self._pool)
        while True:
            with self._cond:
                while not (self._waiting or self._closing):
                    self._cond.wait()
                if not self._waiting:
                    return
                batches = len(self._waiting)
                spans = self._merging = merge_spans(self._waiting)
                self._waiting = []
            started = time.monotonic()
            merged = self._merge(spans)
            if merged:
                log.debug("dashboard upsert: %d span(s) for %d micro-batch(es) in %.2fs",
                          len(spans), batches, time.monotonic() - started)
            with self._cond:
                if not merged:
                    self._waiting = spans + self._waiting
                self._merging = []
                self._save()
            if not merged:
                with self._cond:
                    if self._closing:
                        return  # the spans stay on disk for the next start
                    self._cond.wait(min(_MAX_BACKOFF_SECONDS, 2.0 ** self._failures))

    def _merge(self, spans: list[AffectedWindows]) -> bool:
        try:
            self._updater.recompute(spans)
        except Exception:
            self._failures += 1
            log.exception("dashboard: upserting %d span(s) failed (attempt %d); will retry",
                          len(spans), self._failures)
            return False
        self._failures = 0
        return True

    def _save(self) -> None:
        """Write the pending spans (caller holds the lock); no file when there are none."""
        save_spans(self._file, self._waiting + self._merging)


def save_spans(path: Path, spans: list[AffectedWindows]) -> None:
    if not spans:
        path.unlink(missing_ok=True)
        return
    rows = [{name: getattr(span, name).isoformat() for name in _FIELDS} for span in spans]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as handle:
        json.dump(rows, handle)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def load_spans(path: Path) -> list[AffectedWindows]:
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text())
        return [AffectedWindows(**{name: datetime.fromisoformat(row[name]) for name in _FIELDS})
                for row in rows]
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("dashboard: ignoring unreadable %s (%s)", path, exc)
        return []


_FIELDS = ("source_start", "source_end", "first_window_start", "last_window_start")
