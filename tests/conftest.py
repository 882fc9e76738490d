"""Shared fixtures: one real Kafka broker per test session.

Order of preference: PIPELINE_KAFKA_BOOTSTRAP if it is set (an existing cluster),
testcontainers when a Docker engine answers, else the project's embedded KRaft broker.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-not-found]

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    existing = os.environ.get("PIPELINE_KAFKA_BOOTSTRAP")
    if existing:
        yield existing
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer  # type: ignore[import-not-found]

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    from devkit import broker

    bootstrap = f"127.0.0.1:{_free_port()}"
    data_dir = tmp_path_factory.mktemp("broker")
    broker.start(bootstrap, data_dir, timeout=120)
    try:
        yield bootstrap
    finally:
        broker.stop(data_dir)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


def isolated_env(bootstrap: str, data_dir: Path, suffix: str) -> dict[str, str]:
    """Environment for a worker/CLI confined to its own topics, group and data dir."""
    return {
        "PIPELINE_KAFKA_BOOTSTRAP": bootstrap,
        "PIPELINE_DATA_DIR": str(data_dir),
        "PIPELINE_COMMANDS_TOPIC": f"cmd-{suffix}",
        "PIPELINE_EVENTS_TOPIC": f"evt-{suffix}",
        "PIPELINE_STREAM_TOPIC": f"txs-{suffix}",
        "PIPELINE_BATCH_TOPIC": f"txb-{suffix}",
        "PIPELINE_DLQ_TOPIC": f"dlq-{suffix}",
        "PIPELINE_FRAUD_ALERTS_TOPIC": f"fraud-{suffix}",
        "PIPELINE_CONSUMER_GROUP": f"worker-{suffix}",
        "PIPELINE_SPARK_MASTER": "local[2]",
        "PIPELINE_SPARK_DRIVER_MEMORY": "1g",
        "PIPELINE_HEARTBEAT_SECONDS": "2",
        "PIPELINE_TRIGGER_SECONDS": "1",
    }


def settings_from(env: dict[str, str]) -> Settings:
    return Settings(**{k.removeprefix("PIPELINE_").lower(): v for k, v in env.items()})


@pytest.fixture
def isolated(kafka_bootstrap: str, tmp_path: Path, unique: str) -> dict[str, str]:
    return isolated_env(kafka_bootstrap, tmp_path / "data", unique)
