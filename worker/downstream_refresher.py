"""Keeps the downstream tables (dashboard, fraud scores, gold) fresh off the ingest path.

Recomputing them inside every micro-batch would make ingest wait on six more Delta
commits. Instead a micro-batch hands what it touched (`DownstreamWork`) to this thread and
returns, so Spark can start the next one. The thread folds whatever arrived while it was
busy into one recompute, so the downstream tables trail silver by about one recompute
whatever the stream's pace. Closing applies what is queued, so once the stream has stopped
every downstream table covers every row silver got.

Work not yet applied is kept in a small JSON file next to the query's checkpoint. It is
written before the micro-batch returns, that is before Spark commits the micro-batch's
offsets, so a crash at any point either replays the micro-batch (which hands its work
over again) or leaves the work in the file for the next start to apply. Every recompute
is idempotent, so applying something twice is harmless.

While idle the thread still looks for a newly trained fraud model every `poll_seconds`,
so the stream serves a new model within about two triggers of its training. It also looks
at silver's log for history that `pipeline seed` appended behind the stream's back
(`worker.silver_follower`) and queues its days like any other work.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from worker.downstream import Downstream, DownstreamWork, merge_work
from worker.silver_follower import SilverFollower
from worker.state_files import write_atomic

log = logging.getLogger(__name__)

_MAX_BACKOFF_SECONDS = 30.0


class DownstreamRefresher:
    def __init__(self, downstream: Downstream, pending_file: Path, pool: str,
                 poll_seconds: float = 2.0, follower: SilverFollower | None = None) -> None:
        self._downstream = downstream
        self._follower = follower
        self._next_follow = 0.0
        self._file = pending_file
        self._pool = pool
        self._poll = poll_seconds
        self._cond = threading.Condition()
        self._waiting: list[DownstreamWork] = load_work(pending_file)
        self._merging: list[DownstreamWork] = []
        # Wall-clock arrival of the oldest waiting work and of the work being applied.
        self._oldest: float | None = time.time() if self._waiting else None
        self._applying_since: float | None = None
        self._closing = False
        self._failures = 0
        if self._waiting:
            log.info("downstream: %d item(s) left by the last run, applying them first",
                     len(self._waiting))
        self._thread = threading.Thread(target=self._run, name="downstream-refresh",
                                        daemon=True)
        self._thread.start()

    def submit(self, work: DownstreamWork) -> None:
        """Queue a micro-batch's work; returns once it is on disk."""
        if not work:
            return
        with self._cond:
            self._waiting.append(work)
            if self._oldest is None:
                self._oldest = time.time()
            self._save()
            self._cond.notify_all()

    def lag_seconds(self) -> float:
        """How far the downstream tables trail silver: the age of the oldest work not
        applied yet, 0 when they are caught up."""
        with self._cond:
            times = [t for t in (self._oldest, self._applying_since) if t is not None]
            return round(time.time() - min(times), 3) if times else 0.0

    def close(self, timeout: float) -> bool:
        """Apply what is queued and stop; False on timeout (the work stays on disk for the
        next start)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("downstream: still recomputing after %.0f s; leaving it", timeout)
            return False
        return True

    def _run(self) -> None:
        # The recompute is part of the stream's work, so it runs in the stream's pool.
        spark = self._downstream.spark
        if spark is not None:
            spark.sparkContext.setLocalProperty("spark.scheduler.pool", self._pool)
        while True:
            self._follow()
            with self._cond:
                if not (self._waiting or self._closing):
                    self._cond.wait(self._poll)
                if not self._waiting:
                    if self._closing:
                        return
                    idle = True
                else:
                    idle = False
                    items = len(self._waiting)
                    self._applying_since, self._oldest = self._oldest, None
                    self._merging = [merge_work(self._waiting)]
                    self._waiting = []
            if idle:
                self._downstream.refresh_model()
                continue
            work = self._merging[0]
            started = time.monotonic()
            applied = self._apply(work)
            if applied:
                log.debug("downstream: %d item(s) applied in %.2fs", items,
                          time.monotonic() - started)
            with self._cond:
                if not applied:
                    self._waiting = self._merging + self._waiting
                    self._oldest = min(t for t in (self._applying_since, self._oldest,
                                                   time.time()) if t is not None)
                self._applying_since = None
                self._merging = []
                self._save()
            if not applied:
                with self._cond:
                    if self._closing:
                        return  # the work stays on disk for the next start
                    self._cond.wait(min(_MAX_BACKOFF_SECONDS, 2.0 ** self._failures))

    def _follow(self) -> None:
        """Queue the days of newly seeded silver history (at most once per poll)."""
        if self._follower is None or time.monotonic() < self._next_follow:
            return
        self._next_follow = time.monotonic() + self._poll
        try:
            found = self._follower.poll()
            if found is None:
                return
            if found.spans:
                log.info("downstream: %d seeded commit(s) in silver up to version %d; "
                         "scoring and aggregating %d span(s) of history", found.commits,
                         found.version, len(found.spans))
                self.submit(DownstreamWork(spans=found.spans))  # on disk before the mark
            self._follower.mark(found.version)
        except Exception:  # an unreadable log entry must not stop the refresher
            log.exception("downstream: reading silver's log failed; will retry")

    def _apply(self, work: DownstreamWork) -> bool:
        try:
            self._downstream.apply(work)
        except Exception:
            self._failures += 1
            log.exception("downstream: recomputing %d span(s) failed (attempt %d); will retry",
                          len(work.spans) + len(work.dashboard), self._failures)
            return False
        self._failures = 0
        return True

    def _save(self) -> None:
        """Write the pending work (caller holds the lock); no file when there is none."""
        save_work(self._file, self._waiting + self._merging)


def save_work(path: Path, items: list[DownstreamWork]) -> None:
    if not items:
        path.unlink(missing_ok=True)
        return
    write_atomic(path, json.dumps([item.as_json() for item in items]).encode())


def load_work(path: Path) -> list[DownstreamWork]:
    if not path.exists():
        return []
    try:
        return [DownstreamWork.from_json(row) for row in json.loads(path.read_text())]
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("downstream: ignoring unreadable %s (%s)", path, exc)
        return []
