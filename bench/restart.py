"""Restart: worker start -> ready (registry rebuilt) with many batches and a million
command answers in the event log (goal: within 15 s), against the same worker's first
start on an empty log; plus the pure fold time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Producer

from bench.events import EventWatcher
from bench.harness import Harness
from bench.profiling import registry_rebuild
from contracts.event_signing import EventAuthenticator, load_or_create_event_key
from contracts.events import (
    BatchRecord,
    BatchStatus,
    CommandAcceptedData,
    Event,
    EventType,
    TablePointer,
    batch_subject,
    command_subject,
    make_event,
)
from contracts.kafka_clients import make_producer, read_events
from contracts.registry import fold_events
from contracts.settings import Settings
from worker.analytics import ANALYSES


def produce_batches(h: Harness, count: int) -> dict[str, Any]:
    """`count` batch.completed events with full records, straight to the event topic."""
    settings = h.settings
    now = datetime.now(UTC)
    base = h.paths.delta / "batches"
    template = BatchRecord(
        batch_id="template", status=BatchStatus.COMPLETED, analysis_type="full_report",
        analyses=list(ANALYSES),
        source={"kind": "delta", "start_date": "2025-01-01", "end_date": "2025-01-31"},
        filters={"region": ["north", "south"]}, command_id="template",
        submitted_at=now - timedelta(minutes=5), started_at=now - timedelta(minutes=4),
        finished_at=now, duration_seconds=240.0, row_count=100_000, attempts=1,
        worker_id="bench-synthetic", skipped_invalid_records=0,
    )
    producer = make_producer(settings, **{"linger.ms": 50})
    auth = load_or_create_event_key(settings)
    started = time.monotonic()
    for i in range(count):
        batch_id = f"synthetic-{i:06d}"
        root = base / batch_id
        record = template.model_copy(update={
            "batch_id": batch_id, "command_id": f"cmd-{batch_id}",
            "raw": TablePointer(path=str(root / "raw"), version=0, row_count=100_000),
            "aggregated": {a: TablePointer(path=str(root / "aggregated" / a), version=0,
                                           row_count=10) for a in ANALYSES},
        })
        _produce(producer, settings, auth,
                 make_event(EventType.BATCH_COMPLETED, batch_subject(batch_id),
                            "bench-synthetic", record))
    if producer.flush(60):
        raise RuntimeError("synthetic events not delivered")
    return {"events": count, "produce_s": round(time.monotonic() - started, 3)}


def _produce(producer: Producer, settings: Settings, auth: EventAuthenticator,
             event: Event) -> None:
    # Signed with the workers' event key, as a worker would: the rebuild ignores the rest.
    value = event.encode()
    while True:
        try:
            producer.produce(settings.events_topic, key=event.key, value=value,
                             headers=auth.headers(event.key, value))
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)


def produce_commands(h: Harness, count: int) -> dict[str, Any]:
    """`count` command answers (a week of a busy client, before they expire), straight to
    the event topic."""
    settings = h.settings
    producer = make_producer(settings, **{"linger.ms": 50, "batch.size": 1_000_000})
    auth = load_or_create_event_key(settings)
    started = time.monotonic()
    accepted = CommandAcceptedData(command_type="run_batch", batch_id="synthetic-000000")
    for i in range(count):
        command_id = f"synthetic-cmd-{i:07d}"
        _produce(producer, settings, auth,
                 make_event(EventType.COMMAND_ACCEPTED, command_subject(command_id),
                            "bench-synthetic", accepted, command_id=command_id))
    if producer.flush(120):
        raise RuntimeError("synthetic command answers not delivered")
    return {"commands": count, "produce_commands_s": round(time.monotonic() - started, 3)}


def fold_timing(h: Harness) -> dict[str, Any]:
    started = time.monotonic()
    events = list(read_events(h.settings, from_beginning=True))
    read_s = time.monotonic() - started
    t0 = time.monotonic()
    registry = fold_events(events)
    fold_s = time.monotonic() - t0
    return {"events": len(events), "batches": len(registry.batches),
            "commands": len(registry.commands),
            "read_decode_s": round(read_s, 3), "fold_s": round(fold_s, 3),
            "events_per_s_fold": round(len(events) / fold_s) if fold_s else None}


def measure(h: Harness, cold_start_s: float) -> dict[str, Any]:
    """Stops the running worker, fills the log, starts a new worker and stops it again."""
    h.worker.stop()
    produced = produce_batches(h, h.config.restart_batches)
    produced.update(produce_commands(h, h.config.restart_commands))
    fold = fold_timing(h)
    log_mark = h.worker.log_offset()
    # A watcher from the current end: the new worker's events only.
    with EventWatcher(h.settings, from_end=True) as watcher:
        time.sleep(0.5)
        h.rss.phase("restart")
        start_s = h.worker.start(watcher, on_spawn=h.rss.watch)
        rebuilt = registry_rebuild(h.worker.log_text(log_mark))
        time.sleep(2.0)
        h.worker.stop()
    return {
        **produced,
        "fold": fold,
        "start_to_ready_s": round(start_s, 3),
        "cold_start_to_ready_s": round(cold_start_s, 3),
        "worker_rebuild": {"events": rebuilt[0], "seconds": rebuilt[1]} if rebuilt else None,
    }
