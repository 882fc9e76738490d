"""Thin wrappers over confluent-kafka shared by the worker and the client tools:
client construction (security included), topic creation, and reading the event log.

No Spark here, so client commands stay light.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from contracts.errors import ContractError
from contracts.event_signing import EventAuthenticator, load_event_key
from contracts.events import Event, decode_event
from contracts.settings import Settings
from contracts.topics import topic_specs


class KafkaUnavailable(RuntimeError):
    """The cluster at PIPELINE_KAFKA_BOOTSTRAP did not answer."""


class EventLogUnreadable(RuntimeError):
    """The event topic is missing or cannot be read (authorization, metadata errors)."""


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    conf = {
        **settings.kafka_client_config(),
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": "lz4",
        **overrides,
    }
    return Producer(conf)


def make_consumer(settings: Settings, group_id: str | None = None, **overrides: Any) -> Consumer:
    conf = {
        **settings.kafka_client_config(),
        # A throw-away group for readers that only assign partitions and never commit.
        "group.id": group_id or f"pipeline-reader-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        **overrides,
    }
    return Consumer(conf)


def check_reachable(settings: Settings, timeout: float = 5.0) -> None:
    admin = AdminClient(settings.kafka_client_config())
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(
            f"no Kafka broker answered at {settings.kafka_bootstrap} within {timeout:g}s "
            f"({exc.args[0] if exc.args else exc}). Start one with `pipeline broker start` "
            "or set PIPELINE_KAFKA_BOOTSTRAP."
        ) from None


def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create the project's missing topics; idempotent. Returns the names it created."""
    admin = AdminClient(settings.kafka_client_config())
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot list topics at {settings.kafka_bootstrap}: {exc}") from None
    wanted = [s for s in topic_specs(settings) if s.name not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(
        [
            NewTopic(s.name, num_partitions=s.partitions, replication_factor=-1, config=s.config)
            for s in wanted
        ],
        operation_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            # Another worker or client created it between list and create: that is fine.
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created


_TRANSIENT = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._TIMED_OUT,
    KafkaError.REQUEST_TIMED_OUT,
}


def end_offsets(consumer: Consumer, topic: str, timeout: float = 10.0,
                *, strict: bool = False) -> dict[int, int]:
    """High watermark per partition ({} if the topic does not exist; with `strict`, a
    missing or unreadable topic raises `EventLogUnreadable`). A topic created a moment ago
    may not have a leader yet, so transient errors are retried until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            if meta is None or meta.error is not None:
                if strict:
                    why = meta.error.str() if meta is not None else "no such topic"
                    raise EventLogUnreadable(f"cannot read topic {topic!r}: {why}")
                return {}
            return {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1]
                for p in meta.partitions
            }
        except KafkaException as exc:
            if exc.args[0].code() not in _TRANSIENT or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def read_events(
    settings: Settings,
    *,
    from_beginning: bool = True,
    follow: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    on_bad_record: Callable[[bytes | None, ContractError], None] | None = None,
    start_offsets: dict[int, int] | None = None,
    strict: bool = False,
    authenticator: EventAuthenticator | Literal["auto"] | None = "auto",
) -> Iterator[Event]:
    """Events of the event topic in order: from the start (or the current end, or given
    offsets) up to the end offsets seen at call time, or forever with `follow`.

    Tombstones (null values, which delete a key on the compacted topic) are skipped.
    With `strict`, an unreadable topic raises instead of reading as empty. Events
    without a worker's MAC are skipped when the event key is readable here ("auto"), or
    always with an explicit `authenticator`; None reads them all."""
    if authenticator == "auto":
        authenticator = load_event_key(settings)
    for value in read_event_values(settings, from_beginning=from_beginning, follow=follow,
                                   should_stop=should_stop, start_offsets=start_offsets,
                                   strict=strict, authenticator=authenticator):
        try:
            event = decode_event(value)
        except ContractError as exc:
            if on_bad_record:
                on_bad_record(value, exc)
            continue
        yield event


def read_event_values(
    settings: Settings,
    *,
    from_beginning: bool = True,
    follow: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    start_offsets: dict[int, int] | None = None,
    strict: bool = False,
    authenticator: EventAuthenticator | None = None,
    on_untrusted: Callable[[bytes], None] | None = None,
) -> Iterator[bytes]:
    """The raw values behind `read_events` (tombstones skipped), for a restart's fold.
    With an `authenticator`, values without a valid worker MAC are not yielded but
    handed to `on_untrusted`."""
    # The log has one partition: fetch it in large pieces (librdkafka's default is 1 MB
    # per partition and round trip, a tenth of what a restart could take at once).
    consumer = make_consumer(settings, **{"max.partition.fetch.bytes": 16 * 1024 * 1024,
                                          "fetch.max.bytes": 64 * 1024 * 1024})
    try:
        topic = settings.events_topic
        ends = end_offsets(consumer, topic, strict=strict)
        if not ends:
            return
        if start_offsets is not None:
            starts = {p: start_offsets.get(p, 0) for p in ends}
        elif from_beginning:
            starts = dict.fromkeys(ends, 0)
        else:
            starts = dict(ends)
        consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
        # Compaction leaves gaps, so "done" means the position reached the end, not a count.
        remaining = {p for p in ends if starts[p] < ends[p]}
        while follow or remaining:
            if should_stop():
                return
            # What is already fetched comes in batches (a restart reads the whole log, 10^6
            # events after a busy week); otherwise wait for one, so followers see each
            # event as soon as it arrives.
            batch = consumer.consume(500, 0)
            if not batch:
                msg = consumer.poll(0.5)
                batch = [msg] if msg is not None else []
            for msg in batch:
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        remaining.discard(msg.partition())
                        continue
                    raise KafkaException(msg.error())
                if msg.offset() >= ends.get(msg.partition(), 0) - 1:
                    remaining.discard(msg.partition())
                value = msg.value()
                if value is None:
                    continue
                if authenticator is not None and not authenticator.is_authentic(
                        msg.key(), value, msg.headers()):
                    if on_untrusted is not None:
                        on_untrusted(value)
                    continue
                yield value
    finally:
        consumer.close()


def wait_for_event(
    settings: Settings,
    start_offsets: dict[int, int],
    predicate: Callable[[Event], bool],
    timeout: float,
    on_event: Callable[[Event], None] | None = None,
) -> Event | None:
    """The first event at/after `start_offsets` that satisfies `predicate`, or None on timeout."""
    deadline = time.monotonic() + timeout
    for event in read_events(
        settings,
        follow=True,
        start_offsets=start_offsets,
        should_stop=lambda: time.monotonic() > deadline,
    ):
        if on_event:
            on_event(event)
        if predicate(event):
            return event
    return None
