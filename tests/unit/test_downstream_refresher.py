"""The downstream refresher's queueing, ordering and crash safety (its Delta recomputes are
exercised by the integration and e2e tests; here a recording updater stands in for them to
drive the thread logic)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from worker.analytics import AffectedWindows, affected_windows
from worker.downstream import Downstream, DownstreamWork
from worker.downstream_refresher import DownstreamRefresher, load_work, save_work
from worker.event_spans import EventSpan

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def span(minute: int) -> AffectedWindows:
    return affected_windows(T0 + minute * MINUTE, T0 + minute * MINUTE)


def work(minute: int) -> DownstreamWork:
    return DownstreamWork([span(minute)], [])


def load_spans(path: Path) -> list[AffectedWindows]:
    return [w for item in load_work(path) for w in item.dashboard]


def save_spans(path: Path, spans: list[AffectedWindows]) -> None:
    save_work(path, [DownstreamWork([s], []) for s in spans])


def refresher_for(updater: RecordingUpdater, pending: Path) -> DownstreamRefresher:
    return DownstreamRefresher(Downstream(updater, None, None, None), pending, "pool",
                               poll_seconds=0.2)


class RecordingUpdater:
    """Records each recompute; can be told to block or to fail."""

    def __init__(self) -> None:
        context = SimpleNamespace(setLocalProperty=lambda key, value: None)
        self.spark: Any = SimpleNamespace(sparkContext=context)
        self.calls: list[list[AffectedWindows]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.failures_left = 0

    def recompute(self, spans: list[AffectedWindows]) -> None:
        self.entered.set()
        assert self.gate.wait(30)
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("simulated upsert failure")
        self.calls.append(spans)


def test_spans_round_trip_and_an_empty_list_removes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pending.json"
    spans = [span(0), span(90)]
    save_spans(path, spans)
    assert load_spans(path) == spans
    save_spans(path, [])
    assert not path.exists()
    assert load_spans(path) == []
    path.write_text("{not json")
    assert load_spans(path) == []


def test_spans_queued_during_a_merge_are_merged_together_and_kept_on_disk(
        tmp_path: Path) -> None:
    updater = RecordingUpdater()
    pending = tmp_path / "pending.json"
    refresher = refresher_for(updater, pending)
    updater.gate.clear()
    refresher.submit(work(0))
    assert updater.entered.wait(10)
    # While the first upsert runs, two more micro-batches arrive: one upsert covers both.
    refresher.submit(work(2))
    refresher.submit(work(3))
    on_disk = sorted(load_spans(pending), key=lambda s: s.first_window_start)
    assert on_disk == [span(0), span(2), span(3)]  # on disk until they are merged
    updater.gate.set()
    assert refresher.close(30)
    assert updater.calls[0] == [span(0)]
    assert len(updater.calls) == 2 and len(updater.calls[1]) == 1
    merged = updater.calls[1][0]
    assert (merged.first_window_start, merged.last_window_start) == \
        (span(2).first_window_start, span(3).last_window_start)
    assert not pending.exists()


def test_a_failed_merge_is_retried_and_stays_on_disk_until_it_succeeds(
        tmp_path: Path) -> None:
    updater = RecordingUpdater()
    updater.failures_left = 1
    pending = tmp_path / "pending.json"
    refresher = refresher_for(updater, pending)
    refresher.submit(work(0))
    deadline = time.monotonic() + 30
    while not updater.calls and time.monotonic() < deadline:
        assert pending.exists() or updater.calls
        time.sleep(0.05)
    assert updater.calls == [[span(0)]]
    assert refresher.close(30)
    assert not pending.exists()


def test_spans_left_by_a_crash_are_merged_on_the_next_start(tmp_path: Path) -> None:
    pending = tmp_path / "pending.json"
    save_spans(pending, [span(0), span(300)])
    updater = RecordingUpdater()
    refresher = refresher_for(updater, pending)
    assert refresher.close(30)
    assert updater.calls == [[span(0), span(300)]]
    assert not pending.exists()


def test_close_with_a_failing_merge_keeps_the_spans_for_the_next_start(tmp_path: Path) -> None:
    updater = RecordingUpdater()
    updater.failures_left = 100
    pending = tmp_path / "pending.json"
    refresher = refresher_for(updater, pending)
    refresher.submit(work(0))
    assert refresher.close(30)
    assert load_spans(pending) == [span(0)]


def test_a_pending_file_from_before_fraud_and_gold_still_loads(tmp_path: Path) -> None:
    import json

    pending = tmp_path / "pending.json"
    old = span(5)
    pending.write_text(json.dumps([{name: getattr(old, name).isoformat() for name in (
        "source_start", "source_end", "first_window_start", "last_window_start")}]))
    assert load_work(pending) == [DownstreamWork([old], [])]


def test_event_spans_round_trip_and_merge(tmp_path: Path) -> None:
    pending = tmp_path / "pending.json"
    items = [DownstreamWork([], [EventSpan(T0, T0 + 5 * MINUTE)]),
             DownstreamWork([span(1)], [EventSpan(T0 + 5 * MINUTE, T0 + 10 * MINUTE)])]
    save_work(pending, items)
    assert load_work(pending) == items
    updater = RecordingUpdater()
    gold = RecordingUpdater()
    refresher = DownstreamRefresher(Downstream(updater, None, gold, None), pending, "pool")
    assert refresher.close(30)
    # Touching spans of both items arrive as one.
    assert gold.calls == [[EventSpan(T0, T0 + 10 * MINUTE)]]
    assert refresher.lag_seconds() == 0.0
