"""The registry fold: the latest event per subject rebuilds the state."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.events import (
    BATCH_EVENT_FOR_STATUS,
    BatchRecord,
    BatchStatus,
    Event,
    EventType,
    TablePointer,
    batch_subject,
    command_subject,
    make_event,
)
from contracts.registry import fold_events


def record(batch_id: str, status: BatchStatus, attempts: int = 0) -> BatchRecord:
    done = status is BatchStatus.COMPLETED
    pointer = TablePointer(path=f"/d/{batch_id}", version=0, row_count=1)
    return BatchRecord(batch_id=batch_id, status=status, analysis_type="revenue_by_category",
                       analyses=["revenue_by_category"],
                       source={"kind": "delta", "start_date": "2025-01-01",
                               "end_date": "2025-01-02"},
                       submitted_at=datetime(2025, 1, 1, tzinfo=UTC), attempts=attempts,
                       finished_at=datetime(2025, 1, 1, 1, tzinfo=UTC) if done else None,
                       raw=pointer if done else None,
                       aggregated={"revenue_by_category": pointer} if done else {})


def batch_event(rec: BatchRecord, epoch: int | None = None) -> Event:
    return make_event(BATCH_EVENT_FOR_STATUS[rec.status], batch_subject(rec.batch_id), "w1", rec,
                      epoch=epoch)


def test_latest_batch_event_wins() -> None:
    events = [
        batch_event(record("a", BatchStatus.PENDING)),
        batch_event(record("b", BatchStatus.PENDING)),
        batch_event(record("a", BatchStatus.RUNNING, 1)),
        batch_event(record("a", BatchStatus.COMPLETED, 1)),
    ]
    registry = fold_events(events)
    assert registry.batches["a"].status is BatchStatus.COMPLETED
    assert registry.batches["b"].status is BatchStatus.PENDING
    assert [r.batch_id for r in registry.batches_with(BatchStatus.PENDING)] == ["b"]
    assert registry.counts()["completed"] == 1


def test_compacted_log_gives_the_same_registry() -> None:
    events = [batch_event(record("a", s, 1)) for s in (BatchStatus.PENDING,
                                                       BatchStatus.RUNNING,
                                                       BatchStatus.FAILED)]
    full = fold_events(events)
    compacted = fold_events(events[-1:])
    assert full.batches == compacted.batches


def test_first_command_outcome_is_kept_and_duplicates_do_not_override() -> None:
    accepted = make_event(EventType.COMMAND_ACCEPTED, command_subject("c1"), "w1",
                          {"command_type": "ping"}, command_id="c1")
    replay = make_event(EventType.COMMAND_ACCEPTED, command_subject("c1"), "w1",
                        {"command_type": "ping", "duplicate": True}, command_id="c1")
    registry = fold_events([accepted, replay])
    assert registry.commands["c1"].event_type is EventType.COMMAND_ACCEPTED


def test_stream_desired_state() -> None:
    started = make_event(EventType.STREAM_STARTED, "stream/transactions", "w1",
                         {"state": "running", "topic": "t"})
    progress = make_event(EventType.STREAM_PROGRESS, "stream/transactions/progress", "w1",
                          {"rows_in": 5})
    registry = fold_events([started, progress])
    assert registry.streams["stream/transactions"].state == "running"
    assert registry.last_progress["stream/transactions/progress"]["rows_in"] == 5
    stopped = make_event(EventType.STREAM_STOPPED, "stream/transactions", "w1",
                         {"state": "stopped"})
    assert fold_events([started, stopped]).streams["stream/transactions"].state == "stopped"


def test_fold_of_ten_thousand_batches_is_linear() -> None:
    events = [batch_event(record(f"b{i}", BatchStatus.COMPLETED, 1)) for i in range(10_000)]
    assert len(fold_events(events).batches) == 10_000


def test_a_compacted_duplicate_still_carries_the_original_outcome() -> None:
    """Compaction keeps only the latest event per key: the replayed duplicate."""
    replay = make_event(EventType.COMMAND_ACCEPTED, command_subject("c1"), "w2",
                        {"command_type": "run_batch", "batch_id": "b", "duplicate": True},
                        command_id="c1")
    outcome = fold_events([replay]).commands["c1"]
    assert outcome.event_type is EventType.COMMAND_ACCEPTED
    assert outcome.data == {"command_type": "run_batch", "batch_id": "b"}


def test_forged_or_malformed_batch_events_never_complete_a_batch() -> None:
    pending = record("a", BatchStatus.PENDING)
    no_pointers = pending.model_copy(update={"status": BatchStatus.COMPLETED})
    events = [
        batch_event(pending),
        # completed without any result pointer
        batch_event(no_pointers),
        # the type says completed, the record says running
        make_event(EventType.BATCH_COMPLETED, batch_subject("a"), "w1",
                   record("a", BatchStatus.RUNNING, 1)),
        # keyed for another batch
        make_event(EventType.BATCH_COMPLETED, batch_subject("zzz"), "w1",
                   record("a", BatchStatus.COMPLETED, 1)),
        # data that is not a batch record at all
        make_event(EventType.BATCH_COMPLETED, batch_subject("a"), "w1", {"batch_id": "a"}),
    ]
    registry = fold_events(events)
    assert registry.batches["a"].status is BatchStatus.PENDING
    assert registry.skipped_events == 4
    assert registry.events_seen == 5


def test_events_of_a_passed_epoch_are_ignored() -> None:
    started = make_event(EventType.WORKER_STARTED, "worker/new", "new", {"x": 1}, epoch=2)
    events = [
        batch_event(record("a", BatchStatus.RUNNING, 1), epoch=1),
        started,
        batch_event(record("a", BatchStatus.PENDING, 1), epoch=2),
        # the old worker wakes up and claims the batch is done: ignored
        batch_event(record("a", BatchStatus.COMPLETED, 1), epoch=1),
    ]
    registry = fold_events(events)
    assert registry.batches["a"].status is BatchStatus.PENDING
    assert registry.stale_events == 1
    assert registry.epoch == 2


def test_a_retryable_rejection_is_not_the_outcome() -> None:
    events = [
        make_event(EventType.COMMAND_REJECTED, command_subject("c1"), "w1",
                   {"code": "CAPACITY_EXCEEDED", "message": "full", "retryable": True},
                   command_id="c1"),
    ]
    registry = fold_events(events)
    assert "c1" not in registry.commands
    events.append(make_event(EventType.COMMAND_ACCEPTED, command_subject("c1"), "w1",
                             {"command_type": "run_batch"}, command_id="c1"))
    registry = fold_events(events)
    assert registry.commands["c1"].event_type is EventType.COMMAND_ACCEPTED


def test_old_answers_and_old_pings_expire() -> None:
    from datetime import timedelta

    from contracts.registry import expired_commands, forget_command

    now = datetime(2025, 3, 1, tzinfo=UTC)

    def answer(cid: str, command_type: str, age: timedelta) -> Event:
        event = make_event(EventType.COMMAND_ACCEPTED, command_subject(cid), "w1",
                           {"command_type": command_type}, command_id=cid)
        return event.model_copy(update={"occurred_at": now - age})

    registry = fold_events([
        answer("old-batch", "run_batch", timedelta(days=8)),
        answer("new-batch", "run_batch", timedelta(days=6)),
        answer("old-ping", "ping", timedelta(hours=2)),
        answer("new-ping", "ping", timedelta(minutes=5)),
    ])
    expired = expired_commands(registry, now, timedelta(days=7), timedelta(hours=1))
    assert sorted(expired) == ["old-batch", "old-ping"]
    for cid in expired:
        forget_command(registry, cid)
    assert sorted(registry.commands) == ["new-batch", "new-ping"]


def test_folding_raw_values_equals_folding_decoded_events() -> None:
    """The restart's fast path over raw bytes gives the registry the decoded path gives."""
    from contracts.errors import ContractError
    from contracts.events import decode_event
    from contracts.registry import fold_values

    def answer(cid: str, event_type: EventType, data: dict, epoch: int | None) -> bytes:
        return make_event(event_type, command_subject(cid), "w1", data, command_id=cid,
                          epoch=epoch).encode()

    values = [
        b"not json", b"[1, 2]", b'{"schema_version": 1, "type": "command.accepted"}',
        answer("c1", EventType.COMMAND_ACCEPTED, {"command_type": "ping"}, 1),
        answer("c2", EventType.COMMAND_REJECTED,
               {"code": "CAPACITY_EXCEEDED", "message": "x", "retryable": True}, 1),
        answer("c3", EventType.COMMAND_REJECTED, {"code": "BATCH_NOT_FOUND", "message": "x"},
               None),
        answer("c1", EventType.COMMAND_ACCEPTED, {"command_type": "ping", "duplicate": True}, 1),
        make_event(EventType.WORKER_STARTED, "worker/w2", "w2", {}, epoch=2).encode(),
        answer("stale", EventType.COMMAND_ACCEPTED, {"command_type": "ping"}, 1),
        batch_event(record("a", BatchStatus.COMPLETED, 1), epoch=2).encode(),
        batch_event(record("a", BatchStatus.PENDING).model_copy(
            update={"status": BatchStatus.COMPLETED}), epoch=2).encode(),
        answer("c4", EventType.COMMAND_ACCEPTED, {"command_type": "run_batch",
                                                 "duplicate": True}, 2),
    ]
    decoded = []
    bad_decoded = 0
    for raw in values:
        try:
            decoded.append(decode_event(raw))
        except ContractError:
            bad_decoded += 1
    expected = fold_events(decoded)
    bad: list[bytes] = []
    got = fold_values(values, on_bad_record=lambda raw, _exc: bad.append(raw))
    assert len(bad) == bad_decoded == 3
    assert got.commands == expected.commands
    assert got.batches == expected.batches
    assert got.workers == expected.workers
    assert (got.events_seen, got.skipped_events, got.stale_events, got.epoch) == (
        expected.events_seen + 3, expected.skipped_events + 3, expected.stale_events,
        expected.epoch)
    assert sorted(got.commands) == ["c1", "c3", "c4"]
    assert got.commands["c4"].data == {"command_type": "run_batch"}
