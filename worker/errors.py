"""Errors of the worker: refusals the command loop turns into `command.rejected`, and
the classification of failures into the contract's error codes."""

from __future__ import annotations

from contracts.errors import ErrorCode


class CommandRefused(Exception):
    """`retryable`: a temporary condition (capacity, a stop in flight), not the command's
    final outcome, so the same command_id may be sent again later."""

    def __init__(self, code: ErrorCode, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


class SourceError(Exception):
    """A batch's source cannot be read as asked (missing topic, offsets out of range...)."""


# Spark error conditions that mean "the input is not there or not readable as asked".
_SOURCE_CONDITIONS = (
    "PATH_NOT_FOUND",
    "DELTA_MISSING_DELTA_TABLE",
    "DELTA_PATH_DOES_NOT_EXIST",
    "DELTA_TABLE_NOT_FOUND",
    "TABLE_OR_VIEW_NOT_FOUND",
    "KAFKA_",
)


def is_source_error(exc: BaseException) -> bool:
    """By type and Spark's error condition, never by the wording of a message."""
    if isinstance(exc, SourceError):
        return True
    condition = _spark_condition(exc)
    if condition is not None and condition.startswith(_SOURCE_CONDITIONS):
        return True
    java_class = _java_class(exc)
    return java_class is not None and java_class.startswith("org.apache.kafka.")


# Kafka client errors that pass: the broker away, a leader moving, a request timing out.
_TRANSIENT_JAVA = {
    "org.apache.kafka.common.errors.TimeoutException",
    "org.apache.kafka.common.errors.DisconnectException",
    "org.apache.kafka.common.errors.NetworkException",
    "org.apache.kafka.common.errors.NotLeaderOrFollowerException",
    "org.apache.kafka.common.errors.LeaderNotAvailableException",
    "org.apache.kafka.common.errors.CoordinatorNotAvailableException",
}


def is_transient(exc: BaseException) -> bool:
    """A failure that a later attempt may not meet (Kafka unreachable or timing out)."""
    from confluent_kafka import KafkaError, KafkaException

    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        err: KafkaError = exc.args[0]
        return err.retriable() or err.code() in (
            KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
            KafkaError._MSG_TIMED_OUT, KafkaError._RESOLVE, KafkaError.REQUEST_TIMED_OUT,
            KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
            KafkaError.BROKER_NOT_AVAILABLE, KafkaError.NETWORK_EXCEPTION,
            KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR)
    return _java_class(exc) in _TRANSIENT_JAVA


def _spark_condition(exc: BaseException) -> str | None:
    try:
        from pyspark.errors import PySparkException
    except ImportError:  # pragma: no cover - the worker always has pyspark
        return None
    if isinstance(exc, PySparkException):
        return exc.getCondition()
    return None


def _java_class(exc: BaseException) -> str | None:
    """The class of the Java exception behind a Py4J error, and of its root cause."""
    # Py4J's raw error keeps it as `java_exception`, PySpark's captured ones as `_origin`.
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    if java is None:
        return None
    try:
        while java.getCause() is not None:
            java = java.getCause()
        return str(java.getClass().getName())
    except Exception:  # the JVM may be gone
        return None


def short_message(exc: BaseException, limit: int = 1000) -> str:
    """The first line of an exception, for events: enough to act on, never a trace.
    A raw Py4J error says only which call failed; the Java exception says why."""
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    if java is not None:
        try:
            cause = java
            while cause.getCause() is not None:
                cause = cause.getCause()
            text = str(cause.toString()).strip().splitlines()
            if text:
                return text[0][:limit]
        except Exception:  # the JVM may be gone; fall back to the Python text
            pass
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]
