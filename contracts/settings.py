"""Configuration: one frozen object read from `PIPELINE_*` environment variables.

Shared by the worker and the client tools, so both agree on topics, paths and Kafka security.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.kafka_properties import read_kafka_properties, spark_kafka_options

KAFKA_LOGGER = logging.getLogger("pipeline.kafka")
KAFKA_LOGGER.addHandler(logging.NullHandler())
KAFKA_LOGGER.propagate = False  # the worker turns this on; CLI errors are reported cleanly

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIPELINE_", frozen=True, extra="ignore")

    kafka_bootstrap: str = "localhost:9092"
    data_dir: Path = Path("./data")
    spark_master: str = "local[*]"
    spark_driver_memory: str = "2g"
    spark_ui: bool = False  # the Spark web UI on :4040, for watching pools and jobs
    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    commands_topic: str = "pipeline-commands"
    events_topic: str = "pipeline-events"
    stream_topic: str = "transactions-stream"
    batch_topic: str = "transactions-batch"
    dlq_topic: str = "pipeline-dlq"
    stream_partitions: int = Field(default=3, ge=1)
    consumer_group: str = "pipeline-worker"

    batch_concurrency: int = Field(default=3, ge=1, le=64)
    max_pending_batches: int = Field(default=100, ge=1)
    trigger_seconds: float = Field(default=2.0, gt=0)
    max_offsets_per_trigger: int = Field(default=200_000, ge=1)
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    max_command_bytes: int = Field(default=65_536, ge=1024)
    drain_timeout_seconds: float = Field(default=30.0, ge=0)
    # How long a dead active worker goes unnoticed before a standby takes over.
    takeover_seconds: float = Field(default=10.0, ge=6, le=300)
    # How long a live active worker whose command loop stalls keeps the commands
    # partition (Kafka's max.poll.interval.ms); at least the takeover time.
    max_poll_interval_seconds: float = Field(default=30.0, ge=6, le=3600)
    # A batch that failed or crashed the worker on this many attempts ends failed.
    batch_max_attempts: int = Field(default=3, ge=1, le=100)
    # Shutdown waits this long, after the drain, for Kafka to take the last events.
    shutdown_publish_seconds: float = Field(default=10.0, ge=0, le=600)

    # A YAML file of data-quality expectations replacing the shipped defaults.
    expectations: Path | None = None
    # Silver keeps one row per transaction_id: a copy is recognised as long as silver holds
    # the id with an event time at most this far from the copy's (whenever it arrives).
    dedupe_horizon_hours: float = Field(default=24.0, ge=24, le=24 * 366)

    # Fraud and gold (README.md#fraud-detection): rows whose event time is more than this
    # behind the newest event time seen still land in silver, but no longer update the
    # fraud scores and gold windows; they are counted as `too_late_rows` instead.
    lateness_horizon_hours: float = Field(default=6.0, ge=2, le=24 * 30)
    fraud_alerts_topic: str = "fraud-alerts"
    fraud_high_amount: float = Field(default=5000.0, gt=0)
    fraud_risky_payment_methods: list[str] = Field(default_factory=lambda: ["gift_card"])
    fraud_risky_regions: list[str] = Field(default_factory=lambda: ["northeast"])
    fraud_night_start_hour: int = Field(default=23, ge=0, le=23)
    fraud_night_end_hour: int = Field(default=5, ge=0, le=23)
    fraud_velocity_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    fraud_velocity_max: int = Field(default=5, ge=1)

    # Kafka security, applied to confluent-kafka clients and to Spark's Kafka source alike.
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_ca_location: str | None = None  # PEM file with the CA certificate(s)
    # A client properties file in librdkafka's `key=value` form (README.md#security),
    # applied to every Kafka client of the project, Spark's included.
    kafka_properties: Path | None = None

    # Signed commands (README.md#security): the worker's trusted public keys (JSON) and a
    # client's Ed25519 private key (PEM). Paths only: a key is never a command-line value.
    trusted_keys: Path | None = None
    signing_key: Path | None = None
    # The workers' shared secret that authenticates their events (contracts/event_signing.py);
    # default <data_dir>/security/event.key, created by the first worker.
    event_key: Path | None = None

    @field_validator("kafka_properties")
    @classmethod
    def _properties_readable(cls, value: Path | None) -> Path | None:
        # Read once at load time, so a bad file is a clear settings error before any client
        # starts (the message names the path and line, never a value).
        if value is not None:
            read_kafka_properties(value)
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @property
    def delta_dir(self) -> Path:
        return self.data_dir / "delta"

    @property
    def checkpoint_dir(self) -> Path:
        return self.data_dir / "checkpoints"

    def _librdkafka_config(self) -> dict[str, Any]:
        """The kafka_* settings with the properties file (if any) merged on top."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap,
            "security.protocol": self.kafka_security_protocol.lower(),
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanisms"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username is not None:
            conf["sasl.username"] = self.kafka_sasl_username
            conf["sasl.password"] = self.kafka_sasl_password or ""
        if self.kafka_ssl_ca_location:
            conf["ssl.ca.location"] = self.kafka_ssl_ca_location
        if self.kafka_properties is not None:
            from_file = read_kafka_properties(self.kafka_properties)
            if "sasl.mechanism" in from_file:  # librdkafka's alias: one spelling wins
                conf.pop("sasl.mechanisms", None)
            conf.update(from_file)
        return conf

    def kafka_client_config(self) -> dict[str, Any]:
        """librdkafka (confluent-kafka) settings for this cluster, security included:
        the kafka_* settings with PIPELINE_KAFKA_PROPERTIES (if set) on top."""
        return {
            **self._librdkafka_config(),
            # librdkafka's own log lines go through Python logging instead of raw stderr,
            # so client commands stay quiet and the worker logs them with the rest.
            "logger": KAFKA_LOGGER,
        }

    def spark_kafka_options(self) -> dict[str, str]:
        """The same settings as `kafka.*` options of Spark's Kafka source and sink."""
        return spark_kafka_options(self._librdkafka_config())


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with explicit overrides (CLI flags) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
