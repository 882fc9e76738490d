"""A private Kafka broker and an isolated set of topics, group and data dir per run."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from contracts.settings import Settings
from devkit import broker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_broker(root: Path) -> Iterator[str]:
    """A KRaft broker on a free port with its data under `root`; stopped on exit."""
    bootstrap = f"127.0.0.1:{free_port()}"
    broker.start(bootstrap, root, timeout=180)
    try:
        yield bootstrap
    finally:
        broker.stop(root)


@dataclass(frozen=True)
class Isolated:
    """Environment of the worker and the CLI for one benchmark run: own topics, consumer
    group and data dir, so nothing else on the broker or the machine is touched."""

    bootstrap: str
    data_dir: Path
    spark_master: str
    driver_memory: str
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def pipeline_env(self) -> dict[str, str]:
        return {
            "PIPELINE_KAFKA_BOOTSTRAP": self.bootstrap,
            "PIPELINE_DATA_DIR": str(self.data_dir),
            "PIPELINE_COMMANDS_TOPIC": f"bench-cmd-{self.suffix}",
            "PIPELINE_EVENTS_TOPIC": f"bench-evt-{self.suffix}",
            "PIPELINE_STREAM_TOPIC": f"bench-txs-{self.suffix}",
            "PIPELINE_BATCH_TOPIC": f"bench-txb-{self.suffix}",
            "PIPELINE_DLQ_TOPIC": f"bench-dlq-{self.suffix}",
            "PIPELINE_CONSUMER_GROUP": f"bench-worker-{self.suffix}",
            "PIPELINE_SPARK_MASTER": self.spark_master,
            "PIPELINE_SPARK_DRIVER_MEMORY": self.driver_memory,
        }

    def process_env(self) -> dict[str, str]:
        """os.environ without any outer PIPELINE_* setting, plus ours."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
        env.update(self.pipeline_env())
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def settings(self) -> Settings:
        return Settings(**{k.removeprefix("PIPELINE_").lower(): v
                           for k, v in self.pipeline_env().items()})

    def topic(self, name: str) -> str:
        return f"bench-{name}-{self.suffix}"
