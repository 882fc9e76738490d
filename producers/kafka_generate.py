"""Live TransactionEvents to Kafka at a steady rate (docs/generator.md), optionally bad ones.

Valid records are keyed by `transaction_id`; malformed ones (`--invalid-rate`) let the
stream's quarantine/DLQ path be exercised with the same tool.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from contracts.kafka_clients import make_producer
from contracts.settings import Settings
from contracts.topics import topic_specs
from producers.generator import TransactionGenerator, rate_multiplier

# How long a produced record may wait for delivery before librdkafka fails it, and how long
# the final flush waits: a dead broker ends the run with an error instead of hanging.
MESSAGE_TIMEOUT_MS = 60_000
FLUSH_TIMEOUT_S = 90.0
# Messages produced between checks of the stop flag / progress in as-fast-as-possible mode.
_BURST = 2_000


class DeliveryError(RuntimeError):
    """Some records were not acknowledged by the broker."""

    def __init__(self, failed: int, first_error: str, summary: GenerateSummary | None = None):
        super().__init__(f"{failed} record(s) not delivered; first error: {first_error}")
        self.failed = failed
        self.first_error = first_error
        self.summary = summary


@dataclass
class GenerateSummary:
    valid: int
    invalid: int
    seconds: float
    topic: str

    @property
    def rate(self) -> float:
        return (self.valid + self.invalid) / self.seconds if self.seconds > 0 else 0.0


class _DeliveryTracker:
    """Counts failed deliveries; librdkafka reports only errors (`delivery.report.only.error`)."""

    def __init__(self) -> None:
        self.failed = 0
        self.first_error = ""

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failed += 1
            if not self.first_error:
                self.first_error = f"{err} (topic {msg.topic()})"


def make_tracked_producer(settings: Settings, **overrides: Any
                          ) -> tuple[Producer, _DeliveryTracker]:
    """The project's producer (durable, idempotent), tuned for throughput, and the tracker
    its delivery errors go to."""
    tracker = _DeliveryTracker()
    producer = make_producer(settings, **{
        "client.id": "pipeline-generate",
        # Throughput: wait a little to fill large lz4 batches (~800-byte JSON compresses ~4x).
        "linger.ms": 25,
        "batch.size": 1_000_000,
        "batch.num.messages": 20_000,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
        # A Python callback per message would cost as much as producing it; errors suffice.
        "delivery.report.only.error": True,
        "on_delivery": tracker,
        **overrides,
    })
    return producer, tracker


def ensure_topic(settings: Settings, topic: str, *, timeout: float = 15.0) -> None:
    """Create `topic` if missing, with the worker's spec for it (README.md#topics).

    The worker creates its topics at start-up too; doing it here as well lets data be
    generated before the worker's first run. Also fails fast when the broker is unreachable.
    """
    admin = AdminClient(settings.kafka_client_config())
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise ConnectionError(f"Kafka at {settings.kafka_bootstrap} unreachable: {exc}") from None
    if topic in existing:
        return
    spec = next((s for s in topic_specs(settings) if s.name == topic), None)
    new = NewTopic(topic, num_partitions=spec.partitions if spec else settings.stream_partitions,
                   replication_factor=-1, config=spec.config if spec else {})
    for future in admin.create_topics([new], operation_timeout=timeout).values():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # lost a benign race
                raise


def produce(producer: Producer, topic: str, key: str | bytes, value: bytes) -> None:
    """Produce one record, waiting for queue space instead of failing when it is full."""
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            producer.poll(0.05)  # serves delivery reports, freeing queue space


def finish(producer: Producer, tracker: _DeliveryTracker, *, timeout: float = FLUSH_TIMEOUT_S,
           summary: GenerateSummary | None = None) -> None:
    """Flush and raise `DeliveryError` if anything was not acknowledged."""
    remaining = producer.flush(timeout)
    if remaining:
        tracker.failed += remaining
        tracker.first_error = tracker.first_error or f"still queued after {timeout:.0f}s flush"
    if tracker.failed:
        raise DeliveryError(tracker.failed, tracker.first_error, summary)


@contextmanager
def progress_bar(description: str, total: int | None, *, enabled: bool,
                 unit: str = "msgs") -> Iterator[Callable[[int], None]]:
    """A rich progress line on stderr (count, rate); yields `update(completed)`."""
    if not enabled:
        yield lambda _completed: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} {unit}/s" if speed else f"- {unit}/s", style="cyan")

    columns: list[ProgressColumn] = [TextColumn("[bold]{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    else:
        columns.append(TextColumn("{task.completed:,} " + unit))
    columns += [RateColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=Console(file=sys.stderr), speed_estimate_period=5,
                  refresh_per_second=4) as bar:
        task = bar.add_task(description, total=total)
        yield lambda completed: bar.update(task, completed=completed)


def generate_to_kafka(
    settings: Settings,
    *,
    topic: str | None = None,
    rate: float | None = 10.0,
    count: int | None = None,
    invalid_rate: float = 0.0,
    seed: int | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
    diurnal: bool = False,
    create_topic: bool = True,
    generator: TransactionGenerator | None = None,
) -> GenerateSummary:
    """Produce live events to `topic` (default the stream topic) until `count` or `stop`.

    `rate` is events/s; None or 0 means as fast as possible. With `diurnal=True` the rate
    follows the local hour of day (quiet nights, busy 8 AM-10 PM; docs/generator.md) and
    `rate` is the daily average; off by default so that an
    explicit rate is what you get. `invalid_rate` is the share of malformed records.
    Ctrl+C (or `stop`) ends the run gracefully: queued records are flushed and counted.
    """
    if not 0.0 <= invalid_rate <= 1.0:
        raise ValueError("invalid_rate must be within [0, 1]")
    if count is not None and count < 0:
        raise ValueError("count must be >= 0")
    topic = topic or settings.stream_topic
    gen = generator or TransactionGenerator(seed)
    mix = random.Random(gen.seed ^ 0x1A7A11D)  # which records are broken, reproducibly
    if create_topic:
        ensure_topic(settings, topic)
    producer, tracker = make_tracked_producer(settings)
    stop = stop or threading.Event()
    valid = invalid = 0
    unlimited = not rate or rate <= 0

    # The hot path: bound methods in locals, no per-record function layers. Falls back to
    # `produce()` (which waits for queue space) only when the local queue is full.
    next_event, dumps, raw_produce = gen.event, orjson.dumps, producer.produce
    broken = mix.random if invalid_rate else None

    def send(n: int) -> None:
        nonlocal valid, invalid
        for _ in range(n):
            if broken is not None and broken() < invalid_rate:
                key, raw, _kind = gen.invalid_record()
                produce(producer, topic, key, raw)
                invalid += 1
                continue
            event = next_event()
            value = dumps(event)
            try:
                raw_produce(topic, value, event["transaction_id"])
            except BufferError:
                produce(producer, topic, event["transaction_id"], value)
            valid += 1

    started = time.monotonic()
    try:
        with progress_bar(f"→ {topic}", count, enabled=progress) as update:
            credit, last_tick, shown_at = 0.0, started, started
            while not stop.is_set() and (count is None or valid + invalid < count):
                left = _BURST if count is None else min(_BURST, count - valid - invalid)
                if unlimited:
                    due = left
                else:
                    # Credit accrues at the (possibly diurnal) rate; capped at one second's
                    # worth so a stall (full queue, suspended laptop) is not followed by a burst.
                    now = time.monotonic()
                    eps = rate * (rate_multiplier(time.localtime().tm_hour) if diurnal else 1.0)
                    credit = min(credit + (now - last_tick) * eps, max(eps, 1.0))
                    last_tick = now
                    due = min(int(credit), left)
                    credit -= due
                    if due == 0:
                        producer.poll(0)
                        # Sleep until the next record is due, but wake often enough for `stop`.
                        time.sleep(min(0.1, (1.0 - credit) / eps))
                        continue
                send(due)
                producer.poll(0)
                now = time.monotonic()
                if now - shown_at >= 0.25:
                    update(valid + invalid)
                    shown_at = now
            update(valid + invalid)
    except KeyboardInterrupt:
        pass  # Ctrl+C ends the run: stop producing, then flush below
    summary = GenerateSummary(valid, invalid, 0.0, topic)
    try:
        finish(producer, tracker, summary=summary)
    finally:
        summary.seconds = time.monotonic() - started
    return summary
