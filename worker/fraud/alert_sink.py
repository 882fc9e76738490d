"""Publishes fraud alerts to the `fraud-alerts` topic (PIPELINE_FRAUD_ALERTS_TOPIC).

`send` returns only once every alert is acknowledged by the cluster (idempotent
producer, acks=all) and raises otherwise, so the scorer commits the scores that raised
the alerts only after the alerts are out.
"""

from __future__ import annotations

import threading
from typing import Any

from contracts.fraud import FraudAlert
from contracts.kafka_clients import make_producer
from contracts.settings import Settings


class AlertDeliveryFailed(RuntimeError):
    """Some alerts were not acknowledged; the scores that raised them must not commit."""


class AlertSink:
    def __init__(self, settings: Settings, flush_timeout: float = 30.0) -> None:
        self.topic = settings.fraud_alerts_topic
        self.flush_timeout = flush_timeout
        self._producer = make_producer(settings)
        self._lock = threading.Lock()

    def send(self, alerts: list[FraudAlert]) -> None:
        """Deliver every alert (key `transaction_id`, header `alert_id`) or raise
        `AlertDeliveryFailed`."""
        if not alerts:
            return
        failures: list[str] = []

        def on_delivery(err: Any, msg: Any) -> None:
            if err is not None:
                failures.append(f"{msg.key()!r}: {err}")

        with self._lock:
            for alert in alerts:
                self._produce(alert, on_delivery)
            remaining = self._producer.flush(self.flush_timeout)
        if remaining or failures:
            raise AlertDeliveryFailed(
                f"{len(failures) + remaining} of {len(alerts)} fraud alert(s) not delivered "
                f"to {self.topic!r}: {'; '.join(failures[:3]) or 'flush timed out'}")

    def _produce(self, alert: FraudAlert, on_delivery: Any) -> None:
        while True:
            try:
                self._producer.produce(
                    self.topic, key=alert.transaction_id.encode(),
                    value=alert.model_dump_json().encode(),
                    headers=[("alert_id", alert.alert_id.encode())], on_delivery=on_delivery)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.5)

    def close(self) -> None:
        with self._lock:
            self._producer.flush(self.flush_timeout)
