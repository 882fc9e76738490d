"""PIPELINE_KAFKA_PROPERTIES: parsing the librdkafka file, merging it, mapping it to Spark."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.kafka_properties import (
    KafkaPropertiesError,
    parse_kafka_properties,
    read_kafka_properties,
    spark_kafka_options,
)
from contracts.settings import KAFKA_LOGGER, Settings

SECRET = "s3cr#t=\"with\\odd chars"

SECURE = f"""\
# written by `pipeline broker start --secure`
security.protocol=SASL_SSL

sasl.mechanisms = SCRAM-SHA-512
sasl.username=worker
sasl.password={SECRET}
   ! another comment style
ssl.ca.location=/tmp/ca.pem
"""


def _write(tmp_path: Path, text: str, name: str = "client.properties") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_parse_keys_values_comments_and_blank_lines() -> None:
    assert parse_kafka_properties(SECURE) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "worker",
        "sasl.password": SECRET,  # '=' and '#' inside a value are part of it
        "ssl.ca.location": "/tmp/ca.pem",
    }


def test_empty_value_and_last_duplicate_wins() -> None:
    assert parse_kafka_properties("client.id=\nclient.id=a\nclient.id=b\n") == {"client.id": "b"}


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("security.protocol=SSL\nsasl.password hunter2\n", 2, "expected key=value"),
        ("\n\n=hunter2\n", 3, "not a property name"),
        ("bad key=hunter2\n", 1, "not a property name"),
        ("logger=hunter2\n", 1, "Python-only"),
    ],
)
def test_errors_name_file_and_line_never_the_value(text: str, line: int, why: str) -> None:
    with pytest.raises(KafkaPropertiesError) as caught:
        parse_kafka_properties(text, "/etc/pipeline/kafka.properties")
    message = str(caught.value)
    assert f"/etc/pipeline/kafka.properties, line {line}" in message
    assert why in message
    assert "hunter2" not in message


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.properties"
    with pytest.raises(KafkaPropertiesError, match=r"nope\.properties"):
        read_kafka_properties(missing)


def test_invalid_utf8_names_the_line_not_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "bin.properties"
    path.write_bytes(b"client.id=a\nsasl.password=\xff\xfehunter2\n")
    with pytest.raises(KafkaPropertiesError, match=r"bin\.properties, line 2: not valid") as c:
        read_kafka_properties(path)
    assert "hunter2" not in str(c.value)


def test_read_is_cached_per_version_of_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "client.id=one\n")
    first = read_kafka_properties(path)
    first["client.id"] = "mutated"  # callers get a copy
    assert read_kafka_properties(path) == {"client.id": "one"}
    path.write_text("client.id=two!\n", encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert read_kafka_properties(path) == {"client.id": "two!"}


def test_settings_without_a_file_are_unchanged() -> None:
    settings = Settings(kafka_bootstrap="h:1")
    assert settings.kafka_client_config() == {
        "bootstrap.servers": "h:1",
        "security.protocol": "plaintext",
        "logger": KAFKA_LOGGER,
    }
    assert settings.spark_kafka_options() == {
        "kafka.bootstrap.servers": "h:1",
        "kafka.security.protocol": "PLAINTEXT",
    }


def test_settings_merge_the_file_on_top(tmp_path: Path) -> None:
    path = _write(tmp_path, SECURE)
    settings = Settings(
        kafka_bootstrap="h:1",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="someone",
        kafka_sasl_password="old",
        kafka_properties=path,
    )
    conf = settings.kafka_client_config()
    assert conf == {
        "bootstrap.servers": "h:1",
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "worker",
        "sasl.password": SECRET,
        "ssl.ca.location": "/tmp/ca.pem",
        "logger": KAFKA_LOGGER,
    }


def test_settings_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "bootstrap.servers=b:2\nsasl.mechanism=PLAIN\n")
    monkeypatch.setenv("PIPELINE_KAFKA_PROPERTIES", str(path))
    monkeypatch.setenv("PIPELINE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    conf = Settings().kafka_client_config()
    assert conf["bootstrap.servers"] == "b:2"
    assert conf["sasl.mechanism"] == "PLAIN" and "sasl.mechanisms" not in conf


def test_spark_options_of_a_secure_file(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap="h:1", kafka_properties=_write(tmp_path, SECURE))
    opts = settings.spark_kafka_options()
    escaped = SECRET.replace("\\", "\\\\").replace('"', '\\"')
    assert opts == {
        "kafka.bootstrap.servers": "h:1",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="worker" password="{escaped}";'
        ),
        "kafka.ssl.truststore.type": "PEM",
        "kafka.ssl.truststore.location": "/tmp/ca.pem",
    }


def test_spark_mapping_plain_verification_off_and_dropped_keys() -> None:
    opts = spark_kafka_options(
        {
            "bootstrap.servers": "h:1",
            "security.protocol": "sasl_ssl",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "u",
            "sasl.password": "p",
            "enable.ssl.certificate.verification": "false",
            "client.id": "cli",
            "socket.connection.setup.timeout.ms": "5000",
            # librdkafka-only: no Java equivalent, dropped
            "socket.keepalive.enable": "true",
            "statistics.interval.ms": "1000",
            "ssl.cipher.suites": "ECDHE",
            "debug": "security",
        }
    )
    assert opts == {
        "kafka.bootstrap.servers": "h:1",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "PLAIN",
        "kafka.sasl.jaas.config": (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            'username="u" password="p";'
        ),
        "kafka.ssl.endpoint.identification.algorithm": "",
        "kafka.client.id": "cli",
        "kafka.socket.connection.setup.timeout.ms": "5000",
    }


def test_spark_mapping_endpoint_identification_none_and_gssapi() -> None:
    opts = spark_kafka_options(
        {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "GSSAPI",
            "sasl.kerberos.service.name": "kafka",
            "ssl.endpoint.identification.algorithm": "none",
        }
    )
    assert opts == {
        "kafka.security.protocol": "SASL_PLAINTEXT",
        "kafka.sasl.mechanism": "GSSAPI",  # no SCRAM/PLAIN JAAS line for Kerberos
        "kafka.sasl.kerberos.service.name": "kafka",
        "kafka.ssl.endpoint.identification.algorithm": "",
    }


def test_settings_error_mentions_path_not_secret(tmp_path: Path) -> None:
    """A bad file is a settings error at load time (before any client starts) that names
    the path and line, never the value."""
    path = _write(tmp_path, "security.protocol=SASL_SSL\nsasl.password hunter2\n")
    with pytest.raises(ValidationError) as caught:
        Settings(kafka_properties=path)
    assert f"{path}, line 2" in str(caught.value) and "hunter2" not in str(caught.value)
