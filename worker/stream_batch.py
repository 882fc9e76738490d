"""What the stream does with one micro-batch, around the medallion write: the late-row
watermark, the hand-off to the dashboard, running totals and the quality alerts.

The stream manager decides when a micro-batch runs and publishes what this returns; the
medallion (`worker.medallion`) knows how to write one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from contracts.events import (
    EventType,
    ExpectationResult,
    QualityAlertData,
    StreamProgress,
    quality_subject,
)
from worker.dlq import DlqForwarder
from worker.downstream import DOWNSTREAM_NAMES
from worker.downstream_refresher import DownstreamRefresher
from worker.medallion import Medallion, WriteCounts, WriteRun
from worker.quality.alerts import AlertChange, AlertTracker
from worker.quality.metrics_table import STREAM_RUN, recent_windows
from worker.state_files import write_atomic

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

# Rows older than this behind the newest event time still land in silver, but no longer
# move the dashboard; they are counted as late instead.
WATERMARK = timedelta(minutes=10)


@dataclass
class Totals:
    written: int = 0
    quarantined: int = 0
    duplicates: int = 0
    too_late: int = 0


class StreamBatches:
    def __init__(self, medallion: Medallion) -> None:
        self.medallion = medallion
        # The newest event time seen (the base of the late-row watermark and of the
        # lateness horizon), kept in `newest_file` across restarts once it is set.
        self.max_event_time: datetime | None = None
        self.newest_file: Path | None = None
        self.totals = Totals()
        self.alerts = AlertTracker(medallion.checks.expectations)
        self._seeded = False

    def resume_newest(self, path: Path) -> None:
        """Keep the newest event time in `path`, and take the one a previous run left."""
        self.newest_file = path
        try:
            saved = datetime.fromisoformat(json.loads(path.read_text())["newest_event"])
        except FileNotFoundError:
            return
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable %s (%s)", path, exc)
            return
        if self.max_event_time is None or saved > self.max_event_time:
            self.max_event_time = saved

    def _save_newest(self) -> None:
        if self.newest_file is None or self.max_event_time is None:
            return
        write_atomic(self.newest_file,
                     json.dumps({"newest_event": self.max_event_time.isoformat()}).encode())

    def seed_alerts(self, open_alerts: dict[str, datetime]) -> None:
        """Resume the alert windows from `quality.metrics` and the open alerts of the
        event log (keys `layer.expectation`), once per process."""
        if self._seeded:
            return
        depth = max((e.window for e in self.medallion.checks.expectations), default=10)
        history = recent_windows(self.medallion.spark, self.medallion.paths.quality_metrics,
                                 depth)
        self.alerts.seed(history, open_alerts)
        self._seeded = True

    def write(self, df: DataFrame, batch_id: int, app_id: str,
              refresher: DownstreamRefresher | None, dlq: DlqForwarder | None
              ) -> tuple[WriteCounts, list[AlertChange]] | None:
        newest = self.max_event_time
        watermark = newest - WATERMARK if newest else None
        horizon = newest - timedelta(hours=self.medallion.settings.lateness_horizon_hours) \
            if newest else None
        run = WriteRun(app_id, batch_id, STREAM_RUN)
        counts = self.medallion.write(df, run, dlq, watermark=watermark, horizon=horizon,
                                      label=batch_id)
        if counts is None:
            return None
        if refresher is not None:
            # On disk before Spark commits this micro-batch's offsets.
            refresher.submit(counts.work)
        if counts.too_late:
            log.warning("micro-batch %s: %d row(s) more than %.0f h behind the newest event "
                        "time: stored in silver, not re-scored into fraud and gold",
                        batch_id, counts.too_late,
                        self.medallion.settings.lateness_horizon_hours)
        if counts.newest_event is not None and (self.max_event_time is None
                                                or counts.newest_event > self.max_event_time):
            self.max_event_time = counts.newest_event
            self._save_newest()
        self.totals.written += counts.silver_new
        self.totals.quarantined += counts.quarantined
        self.totals.duplicates += counts.duplicates
        self.totals.too_late += counts.too_late
        changes = self.alerts.observe(counts.outcomes, batch_id, datetime.now(UTC))
        return counts, changes


def progress_of(counts: WriteCounts, totals: Totals, *, batch_id: int, duration: float,
                topic: str, query_id: str, dlq_owed: int, downstream_lag: float | None
                ) -> StreamProgress:
    """`stream.progress` of one micro-batch."""
    return StreamProgress(
        query_id=query_id,
        batch_id=batch_id,
        rows_in=counts.records,
        rows_written=counts.silver_new,
        rows_quarantined=counts.quarantined,
        late_rows=counts.late,
        rows_per_second=round(counts.records / duration, 1) if duration > 0 else 0.0,
        batch_duration_ms=int(duration * 1000),
        offsets={topic: counts.offsets},
        total_rows_written=totals.written,
        total_rows_quarantined=totals.quarantined,
        dlq_owed_batches=dlq_owed,
        rows_bronze=counts.bronze_new,
        duplicates=counts.duplicates,
        rows_dropped=counts.dropped,
        total_duplicates=totals.duplicates,
        quality=[ExpectationResult(**o.as_dict()) for o in counts.outcomes],
        layers=counts.layers(),
        too_late_rows=counts.too_late,
        total_too_late_rows=totals.too_late,
        freshness_seconds=({name: downstream_lag for name in DOWNSTREAM_NAMES}
                           if downstream_lag is not None else {}),
    )


def alert_event(change: AlertChange) -> tuple[EventType, str, QualityAlertData]:
    """The `quality.alert` / `quality.recovered` event of an alert change."""
    e = change.expectation
    data = QualityAlertData(
        layer=e.layer, expectation=e.name, action=str(e.action),  # type: ignore[arg-type]
        threshold=e.threshold, window_batches=e.window,
        rows_checked=change.rows_checked, rows_failed=change.rows_failed,
        failure_rate=round(change.failure_rate, 6), micro_batch_id=change.micro_batch_id,
        opened_at=change.opened_at, recovered_at=change.recovered_at)
    event_type = EventType.QUALITY_ALERT if change.opened else EventType.QUALITY_RECOVERED
    log.log(logging.WARNING if change.opened else logging.INFO,
            "%s %s.%s: %d of %d rows failed over the last %d micro-batch(es)", event_type,
            e.layer, e.name, change.rows_failed, change.rows_checked, e.window)
    return event_type, quality_subject(e.layer, e.name), data
