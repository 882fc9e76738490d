"""The registry fold: events in, current state out. One pure function, used by the
worker at start-up and by the CLI (`pipeline batch list/status`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from contracts.events import BatchRecord, BatchStatus, Event, EventType

_COMMAND_OUTCOMES = (EventType.COMMAND_ACCEPTED, EventType.COMMAND_REJECTED)
_STREAM_STATES = {
    EventType.STREAM_STARTED: "running",
    EventType.STREAM_STOPPED: "stopped",
    EventType.STREAM_FAILED: "failed",
}


@dataclass(frozen=True)
class CommandOutcome:
    """The answer a command got, replayed verbatim when the same command_id comes again."""

    command_id: str
    event_type: EventType
    data: dict[str, Any]


@dataclass(frozen=True)
class StreamDesire:
    """What the stream should be doing: the last lifecycle event and its options."""

    state: str
    data: dict[str, Any]


@dataclass
class Registry:
    batches: dict[str, BatchRecord] = field(default_factory=dict)
    commands: dict[str, CommandOutcome] = field(default_factory=dict)
    streams: dict[str, StreamDesire] = field(default_factory=dict)
    last_progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    workers: dict[str, tuple[EventType, dict[str, Any]]] = field(default_factory=dict)
    events_seen: int = 0

    def batches_with(self, *statuses: BatchStatus) -> list[BatchRecord]:
        return [b for b in self.batches.values() if b.status in statuses]

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in BatchStatus}
        for record in self.batches.values():
            out[record.status.value] += 1
        return out


def apply_event(registry: Registry, event: Event) -> Registry:
    """Fold one event into `registry` (in place, for speed over 10^4+ events) and return it."""
    registry.events_seen += 1
    if event.type in _COMMAND_OUTCOMES and event.command_id:
        # The first answer is the outcome. A duplicate's answer repeats it verbatim, so
        # after compaction (same key, latest wins) it still tells the original outcome.
        data = {k: v for k, v in event.data.items() if k != "duplicate"}
        registry.commands.setdefault(
            event.command_id, CommandOutcome(event.command_id, event.type, data)
        )
    elif event.type.value.startswith("batch."):
        record = BatchRecord.model_validate(event.data)
        registry.batches[record.batch_id] = record
    elif event.type in _STREAM_STATES:
        registry.streams[event.subject] = StreamDesire(_STREAM_STATES[event.type], dict(event.data))
    elif event.type is EventType.STREAM_PROGRESS:
        registry.last_progress[event.subject] = dict(event.data)
    elif event.type.value.startswith("worker."):
        registry.workers[event.worker_id] = (event.type, dict(event.data))
    return registry


def fold_events(events: Iterable[Event], registry: Registry | None = None) -> Registry:
    """Rebuild the registry from the event log, oldest first."""
    registry = registry if registry is not None else Registry()
    for event in events:
        apply_event(registry, event)
    return registry
