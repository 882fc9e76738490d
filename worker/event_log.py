"""The worker's side of the event log: rebuilding the registry from it when the worker
becomes active, and keeping it from growing with every command ever answered."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from confluent_kafka import KafkaException

from contracts.event_signing import load_or_create_event_key
from contracts.events import EventType, RegistryStats, command_subject, worker_subject
from contracts.kafka_clients import EventLogUnreadable, KafkaUnavailable, read_event_values
from contracts.registry import Registry, expired_commands, fold_values
from contracts.settings import Settings
from contracts.topics import topic_specs
from worker.health import HealthReporter
from worker.publisher import EventPublisher
from worker.signals import StopFlag

log = logging.getLogger(__name__)

# Pings are health checks: answering one twice is harmless, so their answers go early.
PING_ANSWER_TTL = timedelta(hours=1)


def rebuild_registry(settings: Settings, registry: Registry, publisher: EventPublisher,
                     health: HealthReporter, stop_flag: StopFlag) -> bool:
    """Fold the whole event log into `registry`. An unreadable log (authorization,
    metadata) is retried, never taken for an empty one. False if told to stop."""
    pause = 1.0
    authenticator = load_or_create_event_key(settings)
    while not stop_flag.is_set():
        started = time.monotonic()
        fresh = Registry()
        untrusted = 0

        def count_untrusted(_value: bytes) -> None:
            nonlocal untrusted
            untrusted += 1

        try:
            fold_values(read_event_values(settings, strict=True, authenticator=authenticator,
                                          on_untrusted=count_untrusted), fresh)
        except (KafkaException, KafkaUnavailable, EventLogUnreadable) as exc:
            reason = f"cannot read the event log {settings.events_topic!r}: {exc}"
            log.error("%s; retrying in %.0fs", reason, pause)
            publisher.publish_standby(EventType.WORKER_HEARTBEAT,
                                      worker_subject(settings.worker_id),
                                      health.snapshot("starting").model_copy(
                                          update={"degraded_reasons": [reason]}))
            stop_flag.wait(pause)
            pause = min(pause * 2, 30.0)
            continue
        # An event without a worker's MAC was never applied: counted as seen and skipped.
        fresh.events_seen += untrusted
        fresh.skipped_events += untrusted
        registry.__dict__.update(fresh.__dict__)
        seconds = time.monotonic() - started
        health.registry_stats = RegistryStats(
            events=registry.events_seen, skipped_events=registry.skipped_events,
            stale_events=registry.stale_events, untrusted_events=untrusted,
            batches=len(registry.batches),
            seconds=round(seconds, 3))
        log.info("registry rebuilt from %d events in %.2fs: %d batches, %d skipped "
                 "(%d not written by a worker), %d stale", registry.events_seen, seconds,
                 len(registry.batches), registry.skipped_events, untrusted,
                 registry.stale_events)
        if untrusted:
            log.warning("%d event(s) on %s carry no valid worker MAC and were ignored: "
                        "something other than a worker writes that topic",
                        untrusted, settings.events_topic)
        return True
    return False


def expire_command_answers(settings: Settings, publisher: EventPublisher) -> None:
    """Tombstone `command/<id>` answers older than the commands topic's retention: such a
    command can no longer be redelivered, so its answer is dead weight on the compacted
    log (and in every rebuild). Pings go after `PING_ANSWER_TTL`, so health checks never
    pile up keys."""
    spec = next(s for s in topic_specs(settings) if s.name == settings.commands_topic)
    retention = timedelta(milliseconds=int(spec.config.get("retention.ms", 7 * 86_400_000)))
    expired = expired_commands(publisher.registry, datetime.now(UTC), retention,
                               PING_ANSWER_TTL)
    for command_id in expired:
        publisher.publish_tombstone(command_subject(command_id))
    if expired:
        log.info("tombstoned %d command answers older than %s", len(expired), retention)
