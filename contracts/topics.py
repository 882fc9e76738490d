"""Topic specifications (README.md#topics): partitions, cleanup policy and retention per topic."""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.settings import Settings

_DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    key: str = ""
    description: str = ""


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the worker owns; created at start-up when missing."""
    return [
        TopicSpec(
            settings.commands_topic,
            1,
            {"cleanup.policy": "delete", "retention.ms": str(7 * _DAY_MS)},
            key="command_id",
            description="Commands to the worker (JSON Command).",
        ),
        TopicSpec(
            settings.events_topic,
            1,
            # Compacted: the latest event per subject is enough to rebuild the registry.
            {
                "cleanup.policy": "compact",
                "min.cleanable.dirty.ratio": "0.1",
                "segment.ms": str(_DAY_MS),
            },
            key="subject",
            description="Lifecycle events and result pointers (JSON Event).",
        ),
        TopicSpec(
            settings.stream_topic,
            settings.stream_partitions,
            {"cleanup.policy": "delete", "retention.ms": str(7 * _DAY_MS)},
            key="transaction_id",
            description="Live TransactionEvents (JSON).",
        ),
        TopicSpec(
            settings.batch_topic,
            settings.stream_partitions,
            {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)},
            key="transaction_id",
            description="Historical TransactionEvents for replay (JSON).",
        ),
        TopicSpec(
            settings.dlq_topic,
            1,
            {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)},
            key="original key",
            description="Records the stream could not accept: original bytes, error headers.",
        ),
        TopicSpec(
            settings.fraud_alerts_topic,
            settings.stream_partitions,
            {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)},
            key="transaction_id",
            description="Fraud alerts (JSON FraudAlert): a transaction reached HIGH or "
                        "CRITICAL, or late data raised its level; header alert_id.",
        ),
    ]
