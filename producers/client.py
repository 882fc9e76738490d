"""Talking to the worker from outside: publish a command, wait for its answer and events.

A command is built once, with its `command_id`, and re-sent byte for byte when no answer
comes: the worker deduplicates by `command_id` and answers a copy with the original
outcome (`duplicate: true`), so a re-send never runs anything twice.

Only confluent-kafka and the contracts: no Spark, no JVM.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException

from contracts.commands import new_command
from contracts.events import Event, EventType
from contracts.kafka_clients import (
    check_reachable,
    end_offsets,
    make_consumer,
    make_producer,
    read_events,
)
from contracts.registry import Registry, fold_events
from contracts.settings import Settings

ANSWERS = (EventType.COMMAND_ACCEPTED, EventType.COMMAND_REJECTED)


@dataclass
class Sent:
    command_id: str
    command_type: str
    event_offsets: dict[int, int]  # where to start reading events that answer it
    raw: bytes = b""               # the exact bytes, re-sent as they are
    attempts: int = 1              # how many times they went to the commands topic


class WorkerClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, command_type: str, payload: dict[str, Any] | None = None,
             command_id: str | None = None) -> Sent:
        """Publish a command; remember the event topic's end first so no answer is missed."""
        check_reachable(self.settings)
        command = new_command(command_type, payload, command_id=command_id,
                              issued_by="pipeline-cli")
        consumer = make_consumer(self.settings)
        try:
            offsets = end_offsets(consumer, self.settings.events_topic)
        finally:
            consumer.close()
        sent = Sent(command.command_id, command_type, offsets, command.encode())
        self._produce(sent)
        return sent

    def resend(self, sent: Sent) -> None:
        """Publish the same command again (same bytes, same command_id)."""
        self._produce(sent)
        sent.attempts += 1

    def _produce(self, sent: Sent) -> None:
        producer = make_producer(self.settings)
        producer.produce(self.settings.commands_topic, key=sent.command_id.encode(),
                         value=sent.raw)
        if producer.flush(30):
            raise KafkaException(f"command not delivered to {self.settings.commands_topic}")

    def wait(self, sent: Sent, predicate: Callable[[Event], bool], timeout: float,
             on_event: Callable[[Event], None] | None = None) -> Event | None:
        deadline = time.monotonic() + timeout
        for event in read_events(self.settings, follow=True, start_offsets=sent.event_offsets,
                                 should_stop=lambda: time.monotonic() > deadline):
            if on_event is not None:
                on_event(event)
            if predicate(event):
                return event
        return None

    def wait_answer(self, sent: Sent, timeout: float) -> Event | None:
        return self.wait(
            sent, lambda e: e.type in ANSWERS and e.command_id == sent.command_id, timeout)

    def registry(self) -> Registry:
        check_reachable(self.settings)
        return fold_events(read_events(self.settings, from_beginning=True))
