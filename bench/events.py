"""Watching the event topic and sending commands, with arrival times for latencies.

One background consumer reads `pipeline-events` and stamps every event with its arrival
time; waits are answered from that record, so measuring never adds a consumer join.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, TopicPartition

from contracts.commands import new_command
from contracts.kafka_clients import make_consumer, make_producer
from contracts.settings import Settings


@dataclass(frozen=True)
class SeenEvent:
    type: str
    subject: str
    command_id: str | None
    data: dict[str, Any]
    offset: int
    mono: float   # time.monotonic() at arrival
    wall: float   # time.time() at arrival
    produced: float  # the record's Kafka timestamp (the worker's produce call), seconds


class EventWatcher:
    def __init__(self, settings: Settings, *, from_end: bool = False) -> None:
        self.settings = settings
        self._consumer = make_consumer(settings, **{
            "enable.partition.eof": False, "fetch.wait.max.ms": 20})
        topic = settings.events_topic
        meta = self._consumer.list_topics(topic, timeout=30).topics[topic]
        start = OFFSET_END if from_end else OFFSET_BEGINNING
        self._consumer.assign([TopicPartition(topic, p, start) for p in meta.partitions])
        self._events: list[SeenEvent] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-events", daemon=True)
        self.errors = 0

    def __enter__(self) -> EventWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            # poll() returns as soon as a record is there (consume(n, t) would wait for n
            # records or the whole timeout, adding up to t to every latency); then drain.
            first = self._consumer.poll(0.05)
            if first is None:
                continue
            mono, wall = time.monotonic(), time.time()
            batch = []
            for msg in [first, *self._consumer.consume(500, 0)]:
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        self.errors += 1
                    continue
                try:
                    obj = orjson.loads(msg.value())
                except orjson.JSONDecodeError:
                    self.errors += 1
                    continue
                batch.append(SeenEvent(obj.get("type", ""), obj.get("subject", ""),
                                       obj.get("command_id"), obj.get("data") or {},
                                       msg.offset(), mono, wall, msg.timestamp()[1] / 1000))
            with self._cond:
                self._events.extend(batch)
                self._cond.notify_all()

    def mark(self) -> int:
        """A position; `wait_for(..., after=mark)` only looks at later events."""
        with self._cond:
            return len(self._events)

    def since(self, mark: int) -> list[SeenEvent]:
        with self._cond:
            return self._events[mark:]

    def wait_for(self, predicate: Callable[[SeenEvent], bool], timeout: float,
                 after: int = 0) -> SeenEvent | None:
        deadline = time.monotonic() + timeout
        index = after
        with self._cond:
            while True:
                while index < len(self._events):
                    event = self._events[index]
                    index += 1
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.5))


class CommandError(RuntimeError):
    pass


class Commander:
    """Publishes commands (any thread) and waits for their outcome on the watcher."""

    def __init__(self, settings: Settings, watcher: EventWatcher) -> None:
        self.settings = settings
        self.watcher = watcher
        self._producer = make_producer(settings)

    def send(self, command_type: str, payload: dict[str, Any] | None = None
             ) -> tuple[str, float, int]:
        """(command_id, monotonic send time, watcher mark taken just before sending)."""
        command = new_command(command_type, payload, command_id=str(uuid.uuid4()),
                              issued_by="bench")
        mark = self.watcher.mark()
        sent = time.monotonic()
        self._producer.produce(self.settings.commands_topic, key=command.command_id.encode(),
                               value=command.encode())
        if self._producer.flush(30):
            raise CommandError(f"{command_type} not delivered")
        return command.command_id, sent, mark

    def request(self, command_type: str, payload: dict[str, Any] | None = None,
                timeout: float = 60.0) -> tuple[str, float, int]:
        """Send and wait for command.accepted; raise on rejection or timeout."""
        command_id, sent, mark = self.send(command_type, payload)
        answer = self.watcher.wait_for(
            lambda e: e.command_id == command_id
            and e.type in ("command.accepted", "command.rejected"), timeout, after=mark)
        if answer is None:
            raise CommandError(f"no answer to {command_type} within {timeout:g}s")
        if answer.type == "command.rejected":
            raise CommandError(f"{command_type} rejected: {answer.data.get('code')} "
                               f"{answer.data.get('message')}")
        return command_id, sent, mark

    def wait(self, predicate: Callable[[SeenEvent], bool], timeout: float, after: int,
             what: str) -> SeenEvent:
        event = self.watcher.wait_for(predicate, timeout, after=after)
        if event is None:
            raise CommandError(f"timed out after {timeout:g}s waiting for {what}")
        return event
