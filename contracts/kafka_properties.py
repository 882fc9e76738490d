"""A Kafka client properties file (`PIPELINE_KAFKA_PROPERTIES`, README.md#security).

The file is in librdkafka's `key=value` form, one property a line; `#` (or `!`) starts a
comment line, blank lines are ignored, whitespace around keys and values is trimmed::

    security.protocol=SASL_SSL
    sasl.mechanisms=SCRAM-SHA-512
    sasl.username=worker
    sasl.password=...
    ssl.ca.location=/path/to/ca.pem

`read_kafka_properties` gives the librdkafka settings (for confluent-kafka clients);
`spark_kafka_options` maps a librdkafka configuration to the `kafka.*` options of Spark's
Kafka source and sink (the Java client): SASL credentials become a JAAS line, a PEM CA file
becomes a PEM truststore, keys the Java client shares pass through and librdkafka-only keys
are dropped.

Values may be secrets: no error message of this module ever contains a value, only the
file's path, a line number and (where it is safe) a key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# confluent-kafka's Python-only settings (callbacks, objects): a text file cannot set them.
_PYTHON_ONLY = frozenset(
    {"logger", "error_cb", "throttle_cb", "stats_cb", "oauth_cb", "on_delivery", "on_commit"}
)

# librdkafka keys with the same name and meaning in the Java client; they reach Spark as
# `kafka.<key>`. Everything else that is not mapped explicitly below is librdkafka-only.
_SHARED_WITH_JAVA = frozenset(
    {
        "bootstrap.servers",
        "client.id",
        "client.dns.lookup",
        "connections.max.idle.ms",
        "metadata.max.age.ms",
        "reconnect.backoff.ms",
        "reconnect.backoff.max.ms",
        "retry.backoff.ms",
        "retry.backoff.max.ms",
        "socket.connection.setup.timeout.ms",
        "sasl.kerberos.service.name",
        "sasl.oauthbearer.token.endpoint.url",
        "sasl.oauthbearer.scope",
        "sasl.oauthbearer.client.id",
        "ssl.endpoint.identification.algorithm",
    }
)

# Mapped explicitly (not passed through as such).
_MAPPED = frozenset(
    {
        "security.protocol",
        "sasl.mechanism",
        "sasl.mechanisms",
        "sasl.username",
        "sasl.password",
        "ssl.ca.location",
        "enable.ssl.certificate.verification",
    }
)

_PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
_SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


class KafkaPropertiesError(ValueError):
    """The properties file is missing or malformed; the message names the file and line,
    never a value."""


def parse_kafka_properties(text: str, source: str = "<properties>") -> dict[str, str]:
    """Parse librdkafka `key=value` text; `source` names the file in errors."""
    props: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            raise KafkaPropertiesError(
                f"{source}, line {number}: expected key=value (no '=' on this line)"
            )
        if not _KEY.fullmatch(key):
            raise KafkaPropertiesError(
                f"{source}, line {number}: the key before '=' is empty or not a property name"
            )
        if key in _PYTHON_ONLY:
            raise KafkaPropertiesError(
                f"{source}, line {number}: {key!r} is a Python-only setting and cannot be "
                "set from a properties file"
            )
        props[key] = value.strip()
    return props


@lru_cache(maxsize=32)
def _read_cached(path: str, _mtime_ns: int, _size: int) -> Mapping[str, str]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KafkaPropertiesError(
            f"cannot read the Kafka properties file {path}: {exc.strerror or exc}"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise KafkaPropertiesError(f"{path}, line {line}: not valid UTF-8") from None
    return MappingProxyType(parse_kafka_properties(text, path))


def read_kafka_properties(path: Path | str) -> dict[str, str]:
    """The librdkafka properties of the file at `path` (a fresh dict; parsed once per
    version of the file: settings ask for client configs often)."""
    resolved = os.path.abspath(os.path.expanduser(os.fspath(path)))
    try:
        stat = os.stat(resolved)
    except OSError as exc:
        raise KafkaPropertiesError(
            f"cannot read the Kafka properties file {resolved}: {exc.strerror or exc}"
        ) from None
    return dict(_read_cached(resolved, stat.st_mtime_ns, stat.st_size))


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_false(value: Any) -> bool:
    return str(value).strip().lower() in {"false", "0", "no", "off"}


def spark_kafka_options(conf: Mapping[str, Any]) -> dict[str, str]:
    """Spark/Java Kafka client options (`kafka.` prefix) for a librdkafka configuration."""
    opts: dict[str, str] = {}
    for key, value in conf.items():
        if key in _SHARED_WITH_JAVA and value is not None:
            opts[f"kafka.{key}"] = str(value)
    algorithm = opts.get("kafka.ssl.endpoint.identification.algorithm")
    if algorithm is not None and algorithm.lower() == "none":
        opts["kafka.ssl.endpoint.identification.algorithm"] = ""  # librdkafka's "none"

    protocol = conf.get("security.protocol")
    if protocol:
        opts["kafka.security.protocol"] = str(protocol).upper()

    mechanism = conf.get("sasl.mechanisms") or conf.get("sasl.mechanism")
    if mechanism:
        mechanism = str(mechanism).strip()
        opts["kafka.sasl.mechanism"] = mechanism
        upper = mechanism.upper()
        module = (
            _PLAIN_MODULE if upper == "PLAIN"
            else _SCRAM_MODULE if upper.startswith("SCRAM-")
            else None
        )
        if module is not None:
            user = str(conf.get("sasl.username") or "")
            password = str(conf.get("sasl.password") or "")
            opts["kafka.sasl.jaas.config"] = (
                f"{module} required username={_jaas_quote(user)} "
                f"password={_jaas_quote(password)};"
            )

    ca_location = conf.get("ssl.ca.location")
    if ca_location:
        opts["kafka.ssl.truststore.type"] = "PEM"
        opts["kafka.ssl.truststore.location"] = str(ca_location)
    if _is_false(conf.get("enable.ssl.certificate.verification", "true")):
        opts["kafka.ssl.endpoint.identification.algorithm"] = ""
    return opts


__all__ = [
    "KafkaPropertiesError",
    "parse_kafka_properties",
    "read_kafka_properties",
    "spark_kafka_options",
]
