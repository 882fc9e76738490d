"""No command input reaches the file system, a Spark option or a topic name unchecked:
the contract's allow-lists, the storage path checks and the worker's own-topic guard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts.commands import (
    KafkaSource,
    StartStreamPayload,
    decode_command,
    is_valid_topic_name,
)
from contracts.errors import ContractError, ErrorCode
from contracts.settings import Settings
from worker.errors import CommandRefused
from worker.handlers import CommandHandlers
from worker.input_guard import check_run_batch, check_source_topic, check_start_stream
from worker.storage import StoragePaths, UnsafePath

BAD_TOPICS = [
    "",
    ".",
    "..",
    "x/../../../../tmp/evil",
    "../evil",
    "/abs",
    "a,b",
    "t1, t2",
    "a b",
    "tab\t",
    "line\n",
    "nul\x00",
    "tränsactions",
    "x" * 250,
    "back\\slash",
    "star*",
]
GOOD_TOPICS = ["transactions-batch", "a", "A.b_c-9", "...", "x" * 249, "_underscore"]


def _command(command_type: str, payload: dict[str, Any]) -> bytes:
    return orjson.dumps({"schema_version": 1, "command_id": "c-1", "type": command_type,
                         "issued_at": "2025-01-15T14:32:07Z", "payload": payload})


def _rejected(raw: bytes) -> ContractError:
    with pytest.raises(ContractError) as info:
        decode_command(raw)
    assert info.value.code is ErrorCode.INVALID_REQUEST
    assert info.value.command_id == "c-1"
    return info.value


def _kafka_batch(**source: Any) -> bytes:
    return _command("run_batch", {"analysis_type": "full_report",
                                  "source": {"kind": "kafka", "topic": "t", **source}})


# ---- the contract: topic names --------------------------------------------------------


@pytest.mark.parametrize("topic", BAD_TOPICS)
def test_bad_topic_names_are_rejected_by_the_contract(topic: str) -> None:
    assert not is_valid_topic_name(topic)
    _rejected(_command("start_stream", {"topic": topic}))
    _rejected(_kafka_batch(topic=topic))


@pytest.mark.parametrize("topic", GOOD_TOPICS)
def test_kafka_topic_names_are_accepted(topic: str) -> None:
    assert is_valid_topic_name(topic)
    assert decode_command(_command("start_stream", {"topic": topic})).payload.topic == topic
    assert decode_command(_kafka_batch(topic=topic)).payload.source.topic == topic


def test_topic_rejection_names_the_rule() -> None:
    error = _rejected(_command("start_stream", {"topic": "x/../evil"}))
    assert "not a Kafka topic name" in error.message
    assert "payload.topic" in error.message


def test_topic_pattern_is_published_in_the_schema() -> None:
    import re

    for schema in (StartStreamPayload.model_json_schema()["properties"]["topic"]["anyOf"][0],
                   KafkaSource.model_json_schema()["properties"]["topic"]):
        pattern = re.compile(schema["pattern"])
        assert schema["maxLength"] == 249
        # The published pattern agrees with the validator (as a JSON Schema engine runs it).
        for topic in BAD_TOPICS:
            # Python's "$" also matches before a final newline, ECMA's does not.
            if len(topic) <= 249 and not topic.endswith("\n"):
                assert not pattern.search(topic), topic
        for topic in GOOD_TOPICS:
            assert pattern.search(topic), topic


# ---- the contract: what becomes a Spark offset option ---------------------------------


@pytest.mark.parametrize(
    "source",
    [
        {"start_offset": 1e300},                              # OverflowError inside Python
        {"start_offset": -5},                                 # before the epoch
        {"start_offset": "1969-12-31T23:59:59Z"},
        {"start_offset": {"timestamp": -1}},
        {"start_offset": {"\u0661": 5}},                      # a digit, but not ASCII
        {"start_offset": {"0x1": 5}},
        {"start_offset": {"12345678901": 5}},                 # not a partition number
        {"start_offset": {"7": 5, "07": 3}},                  # the same partition twice
        {"start_offset": {"other-topic": {"0": 5}}},          # Spark form for another topic
        {"start_offset": {"0": -3}},
        {"start_offset": {"0": "5"}},
        {"end_offset": "earliest"},
    ],
)
def test_bad_offsets_are_rejected_by_the_contract(source: dict[str, Any]) -> None:
    _rejected(_kafka_batch(**source))


def test_offset_maps_and_timestamps_are_normalised() -> None:
    source = decode_command(_kafka_batch(start_offset={"t": {"007": 5, "1": -2}},
                                         end_offset={"timestamp": 1_736_899_200_000})
                            ).payload.source
    assert source.start_offset == {"7": 5, "1": -2}
    # {"timestamp": ms} is milliseconds, like a bare number (not seconds).
    assert source.end_offset.isoformat() == "2025-01-15T00:00:00+00:00"


def test_a_validator_exception_never_escapes_as_anything_but_a_contract_error() -> None:
    for value in (1e308, -1e308, 10**18):
        _rejected(_kafka_batch(start_offset=value))


def test_filter_values_are_data_not_expressions() -> None:
    # Values go to Column.isin as literals; the contract only bounds their column and,
    # for closed sets, their value. An "injection" string is just a value that matches
    # nothing.
    command = decode_command(_command("run_batch", {
        "analysis_type": "full_report",
        "source": {"kind": "delta", "start_date": "2025-01-01", "end_date": "2025-01-02"},
        "filters": {"city": ["x' OR '1'='1", "`; DROP TABLE t"]}}))
    assert command.payload.filters["city"][0] == "x' OR '1'='1"
    _rejected(_command("run_batch", {
        "analysis_type": "full_report",
        "source": {"kind": "delta", "start_date": "2025-01-01", "end_date": "2025-01-02"},
        "filters": {"city = city OR 1": "x"}}))


@pytest.mark.parametrize("batch_id", ["../evil", "a/b", ".", "..", "x" * 65, "-x", "a\nb"])
def test_bad_batch_ids_are_rejected_by_the_contract(batch_id: str) -> None:
    _rejected(_command("run_batch", {
        "batch_id": batch_id, "analysis_type": "full_report",
        "source": {"kind": "delta", "start_date": "2025-01-01", "end_date": "2025-01-02"}}))
    _rejected(_command("cancel_batch", {"batch_id": batch_id}))


# ---- storage: paths derived from input stay under the data directory -------------------


@pytest.fixture
def paths(tmp_path: Path) -> StoragePaths:
    return StoragePaths(Settings(data_dir=tmp_path / "data"))


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "x/../../../evil", "/etc",
                                  "stream_transactions__x/../../../../tmp/evil", "a\\b",
                                  "nul\x00", "x" * 256])
def test_unsafe_path_segments_raise_and_create_nothing(paths: StoragePaths, tmp_path: Path,
                                                       name: str) -> None:
    with pytest.raises(UnsafePath):
        paths.checkpoint(name)
    with pytest.raises(UnsafePath):
        paths.batch_raw(name)
    with pytest.raises(UnsafePath):
        paths.batch_aggregated("b-1", name)
    with pytest.raises(UnsafePath):
        paths.batch_aggregated(name, "revenue_by_category")
    assert list(tmp_path.iterdir()) == []  # nothing was created, not even the data dir


def test_safe_paths_are_under_the_data_directory(paths: StoragePaths) -> None:
    assert paths.checkpoint("stream_transactions") == paths.root / "checkpoints" / \
        "stream_transactions"
    assert paths.checkpoint("stream_transactions__my.topic-1").parent == \
        paths.root / "checkpoints"
    assert paths.batch_raw("b-1") == paths.root / "delta" / "batches" / "b-1" / "raw"
    assert paths.batch_aggregated("b-1", "full_report").is_relative_to(paths.root)


def test_a_symlinked_subdirectory_is_still_allowed(tmp_path: Path) -> None:
    # Deployments may put checkpoints on another disk; the check is on the names given.
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    elsewhere.mkdir()
    (data / "checkpoints").symlink_to(elsewhere)
    paths = StoragePaths(Settings(data_dir=data))
    assert paths.checkpoint("stream_transactions").parent == paths.root / "checkpoints"


# ---- the worker's guard: its own topics are not sources -------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", commands_topic="cmd-x", events_topic="evt-x",
                    dlq_topic="dlq-x", stream_topic="txs-x", batch_topic="txb-x")


@pytest.mark.parametrize("topic", ["cmd-x", "evt-x", "dlq-x", "__consumer_offsets",
                                   "__transaction_state"])
def test_own_and_internal_topics_are_refused(settings: Settings, topic: str) -> None:
    with pytest.raises(CommandRefused) as info:
        check_source_topic(topic, settings)
    assert info.value.code is ErrorCode.INVALID_REQUEST
    start = decode_command(_command("start_stream", {"topic": topic})).payload
    with pytest.raises(CommandRefused):
        check_start_stream(start, settings)
    batch = decode_command(_kafka_batch(topic=topic)).payload
    with pytest.raises(CommandRefused):
        check_run_batch(batch, settings)


@pytest.mark.parametrize("topic", ["txs-x", "txb-x", "other-topic"])
def test_transaction_topics_are_fine(settings: Settings, topic: str) -> None:
    check_source_topic(topic, settings)
    check_start_stream(StartStreamPayload(topic=topic), settings)
    check_start_stream(StartStreamPayload(), settings)  # the default topic
    check_run_batch(decode_command(_kafka_batch(topic=topic, start_offset={topic: {"0": 1}})
                                   ).payload, settings)


def test_the_guard_rechecks_names_it_is_handed_directly(settings: Settings) -> None:
    # A stream resumed from an older event log never passed today's contract.
    with pytest.raises(CommandRefused, match="not a Kafka topic name"):
        check_source_topic("x/../../evil", settings)


class _Untouchable:
    """Stands in for the stream manager and batch runner: a refused command must not
    reach them."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} called for a command that should have been refused")


def test_handlers_refuse_before_touching_the_stream_or_batches(settings: Settings) -> None:
    handlers = CommandHandlers(settings, publisher=None, health=None,  # type: ignore[arg-type]
                               stream=_Untouchable(), batches=_Untouchable(),  # type: ignore[arg-type]
                               backfills=_Untouchable(),  # type: ignore[arg-type]
                               stop_flag=None)  # type: ignore[arg-type]
    for raw in (_command("start_stream", {"topic": "dlq-x"}), _kafka_batch(topic="evt-x"),
                _kafka_batch(topic="cmd-x"), _command("backfill", {"topic": "evt-x"}),
                _command("backfill", {"topic": "__consumer_offsets"})):
        with pytest.raises(CommandRefused) as info:
            handlers.dispatch(decode_command(raw))
        assert info.value.code is ErrorCode.INVALID_REQUEST
    assert not settings.data_dir.exists()
