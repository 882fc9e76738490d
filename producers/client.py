"""Talking to the worker from outside: publish a command, wait for its answer and events.

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
        producer = make_producer(self.settings)
        producer.produce(self.settings.commands_topic, key=command.command_id.encode(),
                         value=command.encode())
        if producer.flush(30):
            raise KafkaException(f"command not delivered to {self.settings.commands_topic}")
        return Sent(command.command_id, command_type, offsets)

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
