"""Checks on command input that need the worker's settings, done before a command is
accepted. The contract already allow-lists every field's shape; what it cannot know is
which topics are the worker's own, or where the data directory is.

Each check raises `CommandRefused(INVALID_REQUEST)`, so a refused command leaves no
trace: nothing has been created on disk and nothing has been handed to Spark yet.
"""

from __future__ import annotations

from contracts.commands import (
    KafkaSource,
    RunBatchPayload,
    StartStreamPayload,
    is_valid_topic_name,
)
from contracts.errors import ErrorCode
from contracts.settings import Settings
from worker.errors import CommandRefused
from worker.storage import StoragePaths, UnsafePath


def own_topics(settings: Settings) -> dict[str, str]:
    """The worker's own topics, which no stream or batch may read: a stream on the DLQ
    would feed its own dead letters back forever, and the commands and events topics
    hold no transactions."""
    return {
        settings.commands_topic: "the commands topic",
        settings.events_topic: "the events topic",
        settings.dlq_topic: "the dead-letter topic",
    }


def check_source_topic(topic: str, settings: Settings) -> None:
    """A topic a stream or batch may read: a single valid name, not one of ours, not
    one of Kafka's internal `__` topics (such as `__consumer_offsets`)."""
    if not is_valid_topic_name(topic):
        raise CommandRefused(ErrorCode.INVALID_REQUEST,
                             f"{topic[:60]!r} is not a Kafka topic name")
    role = own_topics(settings).get(topic)
    if role is not None:
        raise CommandRefused(ErrorCode.INVALID_REQUEST,
                             f"topic {topic!r} is {role} of this worker; it cannot be a "
                             "stream or batch source")
    if topic.startswith("__"):
        raise CommandRefused(ErrorCode.INVALID_REQUEST,
                             f"topic {topic!r} is internal to Kafka; it cannot be a "
                             "stream or batch source")


def check_start_stream(payload: StartStreamPayload, settings: Settings) -> None:
    if payload.topic is not None:
        check_source_topic(payload.topic, settings)


def check_run_batch(payload: RunBatchPayload, settings: Settings) -> None:
    if isinstance(payload.source, KafkaSource):
        check_source_topic(payload.source.topic, settings)
    if payload.batch_id is not None:
        check_batch_paths(payload.batch_id, settings)


def check_batch_paths(batch_id: str, settings: Settings) -> None:
    """The batch's table paths resolve under the data directory (nothing is created)."""
    try:
        StoragePaths(settings).batch_raw(batch_id)
    except UnsafePath as exc:
        raise CommandRefused(ErrorCode.INVALID_REQUEST, f"batch_id {batch_id!r}: {exc}"
                             ) from None
