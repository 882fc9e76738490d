"""The local KRaft broker: real Kafka round trips, idempotent start, clean stop and restart."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from devkit import broker, jars
from tests.devkit.conftest import RunningBroker, free_port

pytestmark = pytest.mark.integration


def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)


def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, key=b"k", value=value)
    assert producer.flush(30) == 0


def _consume_one(bootstrap: str, topic: str, timeout: float = 30.0) -> bytes | None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"devkit-test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic])
        message = consumer.consume(num_messages=1, timeout=timeout)
        return message[0].value() if message and not message[0].error() else None
    finally:
        consumer.close()


def test_round_trip_of_one_message(devkit_broker: RunningBroker) -> None:
    topic = f"devkit-{uuid.uuid4().hex[:8]}"
    _create_topic(devkit_broker.bootstrap, topic)
    _produce(devkit_broker.bootstrap, topic, b"hello")
    assert _consume_one(devkit_broker.bootstrap, topic) == b"hello"


def test_status_reports_running_and_managed(devkit_broker: RunningBroker) -> None:
    status = broker.status(devkit_broker.bootstrap, devkit_broker.data_dir)
    assert status.running and status.managed
    assert status.pid == devkit_broker.status.pid
    assert status.data_dir == devkit_broker.data_dir.resolve() / "kafka"
    files = {p.name for p in status.data_dir.iterdir()}
    assert {"server.properties", "state.json", "broker.pid", "data", "logs"} <= files
    assert (status.data_dir / "logs" / "server.log").stat().st_size > 0  # log4j2 is wired up


def test_start_is_idempotent(devkit_broker: RunningBroker) -> None:
    again = broker.start(devkit_broker.bootstrap, devkit_broker.data_dir, timeout=10)
    assert again == devkit_broker.status


def test_start_refuses_to_shadow_another_broker(
    devkit_broker: RunningBroker, tmp_path: Path
) -> None:
    with pytest.raises(broker.BrokerError, match="another Kafka broker"):
        broker.start(devkit_broker.bootstrap, tmp_path)
    assert not (tmp_path / "kafka" / "broker.pid").exists()


def test_start_refuses_a_port_held_by_something_else(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        bootstrap = f"127.0.0.1:{squatter.getsockname()[1]}"
        assert not broker.is_reachable(bootstrap, timeout=1.0)  # TCP accepts, Kafka does not
        with pytest.raises(broker.BrokerError, match="does not answer as a Kafka broker"):
            broker.start(bootstrap, tmp_path)


def test_missing_jar_cache_propagates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_JAR_CACHE", str(tmp_path / "no-cache"))
    with pytest.raises(jars.JarCacheError, match="make jars"):
        broker.start(f"localhost:{free_port()}", tmp_path)
    assert not (tmp_path / "kafka" / "broker.pid").exists()


def test_nothing_is_reachable_on_a_closed_port(tmp_path: Path) -> None:
    bootstrap = f"localhost:{free_port()}"
    assert not broker.is_reachable(bootstrap)
    status = broker.status(bootstrap, tmp_path)
    assert not status.running and not status.managed and status.pid is None
    assert broker.stop(tmp_path) is False


def test_stop_then_restart_keeps_data_and_ports(tmp_path: Path) -> None:
    """Own broker: stopping the shared one would break the other tests."""
    bootstrap = f"localhost:{free_port()}"
    topic = "kept"
    try:
        first = broker.start(bootstrap, tmp_path, timeout=120, heap="256m")
        state = json.loads((first.data_dir / "state.json").read_text())
        _create_topic(bootstrap, topic)
        _produce(bootstrap, topic, b"survives restarts")

        assert broker.stop(tmp_path) is True
        assert not broker.is_reachable(bootstrap)
        after = broker.status(bootstrap, tmp_path)
        assert not after.running and not after.managed and after.pid is None
        assert not (first.data_dir / "broker.pid").exists()
        assert broker.stop(tmp_path) is False

        second = broker.start(bootstrap, tmp_path, timeout=120, heap="256m")
        assert second.running and second.managed and second.pid != first.pid
        assert json.loads((first.data_dir / "state.json").read_text()) == state
        assert _consume_one(bootstrap, topic) == b"survives restarts"
    finally:
        broker.stop(tmp_path)


def test_cli_status_and_errors(devkit_broker: RunningBroker, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devkit.broker", *args], capture_output=True, text=True
        )

    ours = cli(
        "status", "--bootstrap", devkit_broker.bootstrap, "--data-dir", str(devkit_broker.data_dir)
    )
    assert ours.returncode == 0 and "running (managed" in ours.stdout
    clash = cli("start", "--bootstrap", devkit_broker.bootstrap, "--data-dir", str(tmp_path))
    assert clash.returncode == 1 and "another Kafka broker" in clash.stderr
    again = cli(
        "start", "--bootstrap", devkit_broker.bootstrap, "--data-dir", str(devkit_broker.data_dir)
    )
    assert again.returncode == 0 and again.stdout.strip() == devkit_broker.bootstrap
