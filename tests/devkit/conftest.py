"""Fixtures for the devkit tests: a private broker on a free port, always stopped."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devkit import broker


def free_port() -> int:
    # Never 9092: a developer's own broker may be running there.
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != 9092:
            return port


@dataclass(frozen=True)
class RunningBroker:
    bootstrap: str
    data_dir: Path
    status: broker.BrokerStatus


@pytest.fixture(scope="session")
def devkit_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBroker]:
    data_dir = tmp_path_factory.mktemp("devkit-broker")
    bootstrap = f"localhost:{free_port()}"
    try:
        # Inside the try: a start that fails half-way must still be cleaned up.
        status = broker.start(bootstrap, data_dir, timeout=120, heap="384m")
        yield RunningBroker(bootstrap, data_dir, status)
    finally:
        broker.stop(data_dir)
