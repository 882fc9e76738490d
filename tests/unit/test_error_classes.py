"""Failures are classified by type, never by the words of a message."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from worker.errors import SourceError, is_source_error, is_transient, short_message


def test_kafka_transport_failures_are_transient() -> None:
    assert is_transient(KafkaException(KafkaError(KafkaError._TRANSPORT)))
    assert is_transient(KafkaException(KafkaError(KafkaError._ALL_BROKERS_DOWN)))
    # what a broker in controlled shutdown answers
    assert is_transient(KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)))
    assert not is_transient(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)))


def test_a_message_mentioning_a_partition_is_not_a_source_error() -> None:
    assert not is_source_error(RuntimeError("partition 3 of the offsets was odd"))
    assert not is_transient(RuntimeError("Kafka timeout"))
    assert is_source_error(SourceError("no such topic"))


def test_short_message_is_the_first_line() -> None:
    assert short_message(ValueError("first\nsecond")) == "first"
    assert short_message(ValueError("")) == "ValueError"
