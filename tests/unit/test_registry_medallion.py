"""The registry fold of the medallion's events: backfills like batches (latest event per
subject, epoch fencing, inconsistent events skipped and counted), open quality alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts.events import (
    BACKFILL_EVENT_FOR_STATUS,
    BackfillRecord,
    BatchStatus,
    Event,
    EventType,
    QualityAlertData,
    backfill_subject,
    make_event,
    quality_subject,
)
from contracts.registry import fold_events, fold_values

T0 = datetime(2025, 1, 15, 14, 0, tzinfo=UTC)


def record(backfill_id: str, status: BatchStatus, **extra: Any) -> BackfillRecord:
    done = status is BatchStatus.COMPLETED
    fields: dict[str, Any] = {
        "backfill_id": backfill_id, "status": status, "topic": "transactions-stream",
        "start_offset": "earliest", "end_offset": {"0": 100}, "submitted_at": T0,
        "resolved_offsets": {"0": [0, 100]} if done else None,
        "finished_at": datetime(2025, 1, 15, 14, 5, tzinfo=UTC) if done else None,
        "records_read": 100 if done else 0, "chunks_done": 1 if done else 0, "chunks_total": 1,
    }
    return BackfillRecord.model_validate({**fields, **extra})


def backfill_event(rec: BackfillRecord, epoch: int | None = None) -> Event:
    return make_event(BACKFILL_EVENT_FOR_STATUS[rec.status], backfill_subject(rec.backfill_id),
                      "w1", rec, epoch=epoch)


def alert(expectation: str = "completeness", *, recovered: bool = False,
          layer: str = "silver", **extra: Any) -> QualityAlertData:
    fields: dict[str, Any] = {
        "layer": layer, "expectation": expectation, "action": "drop", "threshold": 0.01,
        "window_batches": 10, "rows_checked": 1000, "rows_failed": 5 if recovered else 40,
        "failure_rate": 0.005 if recovered else 0.04, "micro_batch_id": 12, "opened_at": T0,
        "recovered_at": datetime(2025, 1, 15, 14, 3, tzinfo=UTC) if recovered else None,
    }
    return QualityAlertData.model_validate({**fields, **extra})


def quality_event(data: QualityAlertData, *, recovered: bool = False,
                  epoch: int | None = None, subject: str | None = None) -> Event:
    return make_event(EventType.QUALITY_RECOVERED if recovered else EventType.QUALITY_ALERT,
                      subject or quality_subject(data.layer, data.expectation), "w1", data,
                      epoch=epoch)


# ---- backfills --------------------------------------------------------------------------


def test_latest_backfill_event_wins() -> None:
    events = [
        backfill_event(record("a", BatchStatus.PENDING)),
        backfill_event(record("b", BatchStatus.PENDING)),
        backfill_event(record("a", BatchStatus.RUNNING, attempts=1, chunks_done=0)),
        backfill_event(record("a", BatchStatus.COMPLETED, attempts=1)),
    ]
    registry = fold_events(events)
    assert registry.backfills["a"].status is BatchStatus.COMPLETED
    assert registry.backfills["a"].resolved_offsets == {"0": [0, 100]}
    assert registry.backfills["b"].status is BatchStatus.PENDING
    assert [r.backfill_id for r in registry.backfills_with(BatchStatus.PENDING)] == ["b"]
    assert registry.batches == {}
    assert registry.skipped_events == 0


def test_compacted_log_gives_the_same_backfills() -> None:
    events = [backfill_event(record("a", s, attempts=1))
              for s in (BatchStatus.PENDING, BatchStatus.RUNNING, BatchStatus.FAILED)]
    assert fold_events(events).backfills == fold_events(events[-1:]).backfills


def test_forged_or_malformed_backfill_events_are_skipped_and_counted() -> None:
    pending = record("a", BatchStatus.PENDING)
    events = [
        backfill_event(pending),
        # completed without its end time and resolved range
        make_event(EventType.BACKFILL_COMPLETED, backfill_subject("a"), "w1",
                   pending.model_copy(update={"status": BatchStatus.COMPLETED})),
        # the type says completed, the record says running
        make_event(EventType.BACKFILL_COMPLETED, backfill_subject("a"), "w1",
                   record("a", BatchStatus.RUNNING)),
        # keyed for another backfill
        make_event(EventType.BACKFILL_COMPLETED, backfill_subject("zzz"), "w1",
                   record("a", BatchStatus.COMPLETED)),
        # keyed like a batch
        make_event(EventType.BACKFILL_COMPLETED, "batch/a", "w1",
                   record("a", BatchStatus.COMPLETED)),
        # data that is not a backfill record at all
        make_event(EventType.BACKFILL_FAILED, backfill_subject("a"), "w1", {"backfill_id": "a"}),
        # a batch record under a backfill event type
        make_event(EventType.BACKFILL_PENDING, backfill_subject("a"), "w1",
                   {"batch_id": "a", "status": "pending", "analysis_type": "x",
                    "source": {}, "submitted_at": T0.isoformat()}),
    ]
    registry = fold_events(events)
    assert registry.backfills["a"] == pending
    assert registry.skipped_events == 6
    assert registry.events_seen == 7


def test_backfill_events_of_a_passed_epoch_are_ignored() -> None:
    events = [
        backfill_event(record("a", BatchStatus.RUNNING, attempts=1), epoch=1),
        make_event(EventType.WORKER_STARTED, "worker/new", "new", {}, epoch=2),
        backfill_event(record("a", BatchStatus.PENDING, attempts=1), epoch=2),
        # the old worker wakes up and claims the backfill is done: ignored
        backfill_event(record("a", BatchStatus.COMPLETED, attempts=1), epoch=1),
    ]
    registry = fold_events(events)
    assert registry.backfills["a"].status is BatchStatus.PENDING
    assert registry.stale_events == 1
    assert registry.epoch == 2


def test_folding_raw_values_gives_the_same_backfills_and_alerts() -> None:
    events = [
        backfill_event(record("a", BatchStatus.PENDING), epoch=1),
        backfill_event(record("a", BatchStatus.COMPLETED), epoch=1),
        quality_event(alert("completeness"), epoch=1),
        quality_event(alert("validity"), epoch=1),
        quality_event(alert("validity", recovered=True), recovered=True, epoch=1),
    ]
    decoded = fold_events(events)
    raw = fold_values([e.encode() for e in events])
    assert raw.backfills == decoded.backfills
    assert raw.quality_alerts == decoded.quality_alerts
    assert list(raw.quality_alerts) == [quality_subject("silver", "completeness")]


# ---- quality alerts ---------------------------------------------------------------------


def test_an_alert_opens_is_replaced_and_closes() -> None:
    first = alert(micro_batch_id=12)
    again = alert(micro_batch_id=20, rows_failed=80, failure_rate=0.08)
    other = alert("volume", layer="bronze", action="warn")
    registry = fold_events([quality_event(first), quality_event(other), quality_event(again)])
    key = quality_subject("silver", "completeness")
    assert set(registry.quality_alerts) == {key, quality_subject("bronze", "volume")}
    assert registry.quality_alerts[key] == again

    registry = fold_events([quality_event(alert(recovered=True), recovered=True)], registry)
    assert set(registry.quality_alerts) == {quality_subject("bronze", "volume")}
    # a recovery of an alert that is not open changes nothing
    registry = fold_events([quality_event(alert(recovered=True), recovered=True)], registry)
    assert set(registry.quality_alerts) == {quality_subject("bronze", "volume")}
    assert registry.skipped_events == 0


def test_inconsistent_quality_events_are_skipped() -> None:
    open_alert = alert()
    events = [
        quality_event(open_alert),
        # keyed for another expectation
        quality_event(alert(recovered=True), recovered=True,
                      subject=quality_subject("silver", "validity")),
        # a recovery without recovered_at
        quality_event(alert(), recovered=True),
        # an alert that says it recovered
        quality_event(alert("validity", recovered=True)),
        # not an alert at all
        make_event(EventType.QUALITY_ALERT, quality_subject("silver", "x"), "w1", {"x": 1}),
        # an unknown action
        make_event(EventType.QUALITY_ALERT, quality_subject("silver", "y"), "w1",
                   {**alert("y").model_dump(mode="json"), "action": "explode"}),
    ]
    registry = fold_events(events)
    assert registry.quality_alerts == {quality_subject("silver", "completeness"): open_alert}
    assert registry.skipped_events == 5


def test_quality_events_of_a_passed_epoch_are_ignored() -> None:
    events = [
        make_event(EventType.WORKER_STARTED, "worker/new", "new", {}, epoch=3),
        quality_event(alert(), epoch=3),
        quality_event(alert(recovered=True), recovered=True, epoch=2),
        quality_event(alert("validity"), epoch=2),
    ]
    registry = fold_events(events)
    assert list(registry.quality_alerts) == [quality_subject("silver", "completeness")]
    assert registry.stale_events == 2
