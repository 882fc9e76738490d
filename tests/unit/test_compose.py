"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

What matters to a user: `docker compose up` starts the broker, the UI and the worker in
order, every container speaks to the broker on the right listener, and each `PIPELINE_*`
variable is one the worker actually reads, with the contract's topic names.
"""

from __future__ import annotations

from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def env(service: str) -> dict[str, str]:
    raw = SERVICES[service].get("environment", {})
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {key: str(value) for key, value in raw.items()}


def depends(service: str) -> dict[str, str]:
    raw = SERVICES[service].get("depends_on", {})
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def test_services_and_images() -> None:
    assert set(SERVICES) == {"kafka", "kafka-ui", "worker", "generator"}
    assert SERVICES["kafka"]["image"] == "apache/kafka:4.1.1"
    assert SERVICES["kafka-ui"]["image"].split(":")[0] in {
        "kafbat/kafka-ui",
        "provectuslabs/kafka-ui",
    }
    assert SERVICES["worker"]["build"] in (".", {"context": "."})
    # The generator runs the worker's image, so both always carry the same code.
    assert SERVICES["generator"]["image"] == SERVICES["worker"]["image"]
    assert SERVICES["generator"]["profiles"] == ["generator"]
    command = SERVICES["generator"]["command"]
    command = command.split() if isinstance(command, str) else command
    assert command[:2] == ["pipeline", "generate"]
    assert command[command.index("--rate") + 1] == "50"


def test_ports() -> None:
    assert "9092:9092" in SERVICES["kafka"]["ports"]
    assert "8080:8080" in SERVICES["kafka-ui"]["ports"]


def _listeners(value: str) -> dict[str, str]:
    return dict(item.split("://", 1) for item in value.split(","))


def test_kafka_is_a_single_kraft_node_with_inner_and_host_listeners() -> None:
    kafka = env("kafka")
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{kafka['KAFKA_NODE_ID']}@")
    assert kafka["CLUSTER_ID"]
    advertised = set(_listeners(kafka["KAFKA_ADVERTISED_LISTENERS"]).values())
    assert advertised == {"kafka:29092", "localhost:9092"}
    bound_ports = {v.rsplit(":", 1)[1] for v in _listeners(kafka["KAFKA_LISTENERS"]).values()}
    assert {"29092", "9092"} <= bound_ports
    protocol_map = kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    named = {item.split(":", 1)[0] for item in protocol_map}
    assert set(_listeners(kafka["KAFKA_LISTENERS"])) <= named
    # Topics come from the worker with the contract's policies, never from auto-creation.
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_containers_use_the_in_network_listener() -> None:
    assert env("kafka-ui")["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == "kafka:29092"
    for service in ("worker", "generator"):
        assert env(service)["PIPELINE_KAFKA_BOOTSTRAP"] == "kafka:29092"
    assert env("worker")["PIPELINE_DATA_DIR"] == "/data"


def test_worker_keeps_its_data_in_a_volume() -> None:
    volumes = SERVICES["worker"]["volumes"]
    sources = [v.split(":")[0] for v in volumes if v.split(":")[1] == "/data"]
    assert sources and sources[0] in COMPOSE["volumes"]


@pytest.mark.parametrize("service", ["kafka", "kafka-ui", "worker"])
def test_healthchecks(service: str) -> None:
    check = SERVICES[service]["healthcheck"]
    assert not check.get("disable")
    assert check["test"][0] in {"CMD", "CMD-SHELL"}
    assert {"interval", "timeout", "retries"} <= set(check)


def test_worker_health_is_a_ping_over_kafka() -> None:
    assert "pipeline ping" in " ".join(SERVICES["worker"]["healthcheck"]["test"])


def test_start_up_order() -> None:
    # Everything waits for a healthy broker; the generator waits for a healthy worker,
    # which has created the topics with their contract settings.
    assert depends("kafka") == {}
    assert depends("kafka-ui") == {"kafka": "service_healthy"}
    assert depends("worker") == {"kafka": "service_healthy"}
    assert depends("generator") == {"kafka": "service_healthy", "worker": "service_healthy"}
    for service in SERVICES:
        for needed, condition in depends(service).items():
            if condition == "service_healthy":
                assert not SERVICES[needed].get("healthcheck", {}).get("disable"), needed
                assert "healthcheck" in SERVICES[needed], needed
    order = list(TopologicalSorter({s: set(depends(s)) for s in SERVICES}).static_order())
    assert order.index("kafka") < order.index("worker") < order.index("generator")


def _pipeline_env() -> list[tuple[str, str, str]]:
    return [
        (service, key, value)
        for service in SERVICES
        for key, value in env(service).items()
        if key.startswith("PIPELINE_")
    ]


def test_pipeline_variables_are_settings_fields() -> None:
    used = _pipeline_env()
    assert used
    for service, key, value in used:
        field = key.removeprefix("PIPELINE_").lower()
        assert field in Settings.model_fields, f"{service}: {key} is not a Settings field"
        Settings(**{field: value})  # the value is one the worker accepts


def test_topic_names_are_the_settings_defaults() -> None:
    topics = {
        f"PIPELINE_{name.upper()}": info.default
        for name, info in Settings.model_fields.items()
        if name.endswith("_topic")
    }
    for service, key, value in _pipeline_env():
        if key in topics:
            assert value == topics[key], f"{service}: {key}={value}, Settings says {topics[key]}"


def test_dockerfile_builds_a_self_contained_non_root_worker() -> None:
    lines = [line.strip() for line in DOCKERFILE.splitlines()]
    assert any(line.startswith("FROM python:3.11-slim") for line in lines)
    assert "openjdk-17-jre-headless" in DOCKERFILE
    assert "python -m devkit.jars fetch" in DOCKERFILE  # jars at build time: starts offline
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert "pipeline ping" in DOCKERFILE
    assert lines[[i for i, line in enumerate(lines) if line.startswith("CMD")][-1]] == (
        'CMD ["pipeline", "worker"]'
    )


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".cache", "data", ".git"} <= ignored
