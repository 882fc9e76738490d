"""Reading the event log against a real broker: an unreadable log is an error, never an
empty registry, and tombstones are skipped."""

from __future__ import annotations

import pytest

from contracts.events import EventType, make_event
from contracts.kafka_clients import (
    EventLogUnreadable,
    ensure_topics,
    make_producer,
    read_events,
)
from contracts.registry import fold_events
from tests.conftest import settings_from

pytestmark = pytest.mark.integration


def test_a_missing_event_log_is_an_error_when_strict(isolated: dict[str, str]) -> None:
    settings = settings_from(isolated)  # its topics were never created
    assert list(read_events(settings)) == []  # the CLI: nothing to show yet
    with pytest.raises(EventLogUnreadable):
        list(read_events(settings, strict=True))  # the worker: never an empty registry


def test_tombstones_are_skipped_and_bad_records_reported(isolated: dict[str, str]) -> None:
    settings = settings_from(isolated)
    ensure_topics(settings)
    producer = make_producer(settings)
    good = make_event(EventType.COMMAND_ACCEPTED, "command/c1", "w1",
                      {"command_type": "ping"}, command_id="c1")
    producer.produce(settings.events_topic, key=b"command/c0", value=b"{not json")
    producer.produce(settings.events_topic, key=b"command/c1", value=good.encode())
    producer.produce(settings.events_topic, key=b"command/c2", value=None)
    assert producer.flush(30) == 0
    bad: list[bytes | None] = []
    events = list(read_events(settings, strict=True,
                              on_bad_record=lambda raw, _exc: bad.append(raw)))
    assert [e.event_id for e in events] == [good.event_id]
    assert bad == [b"{not json"]
    assert list(fold_events(events).commands) == ["c1"]
