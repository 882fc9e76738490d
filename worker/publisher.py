"""Publishes events and keeps the in-memory registry in step with what was published.

The worker's registry is the same fold the CLI runs over the topic, applied to every
event as it is produced, so memory never says something the log does not.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, Producer
from pydantic import BaseModel

from contracts.events import Event, EventType, make_event
from contracts.registry import Registry, apply_event
from contracts.settings import Settings

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """An event could not be written to the event topic."""


class EventPublisher:
    def __init__(self, producer: Producer, settings: Settings, registry: Registry) -> None:
        self._producer = producer
        self._settings = settings
        self._lock = threading.Lock()
        self._failed: list[KafkaError] = []
        self.registry = registry

    def publish(
        self,
        event_type: EventType,
        subject: str,
        data: BaseModel | dict[str, Any],
        *,
        command_id: str | None = None,
        flush: bool = False,
    ) -> Event:
        event = make_event(event_type, subject, self._settings.worker_id, data,
                           command_id=command_id)
        with self._lock:
            apply_event(self.registry, event)
            self._producer.produce(
                self._settings.events_topic, key=event.key, value=event.encode(),
                on_delivery=self._delivered,
            )
            self._producer.poll(0)
        log.debug("published %s %s", event.type, event.subject)
        if flush:
            self.flush()
        return event

    def flush(self, timeout: float = 30.0) -> None:
        """Block until every event so far is acknowledged by the broker."""
        remaining = self._producer.flush(timeout)
        if remaining:
            raise PublishError(f"{remaining} event(s) not acknowledged within {timeout:g}s")
        if self._failed:
            errors, self._failed = self._failed, []
            raise PublishError(f"event delivery failed: {errors[0]}")

    def _delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            log.error("event delivery failed: %s", err)
            self._failed.append(err)
