"""The published schemas: in step with the models, valid, and agreeing with the decoder.

A client in another language trusts `schemas/`; these tests make sure what it accepts is
what the worker accepts, and that the AsyncAPI document is well formed and self-consistent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from contracts.commands import CommandType, decode_command, new_command
from contracts.errors import ContractError, ErrorCode
from contracts.events import (
    EVENT_DATA_MODELS,
    BatchRecord,
    BatchStatus,
    EventType,
    StreamHealth,
    WorkerHealth,
    batch_subject,
    decode_event,
    make_event,
    worker_subject,
)
from contracts.schema_export import (
    ASYNCAPI_FILE,
    JSON_SCHEMA_DIALECT,
    SCHEMA_BASE_URI,
    drifted_files,
    export_schemas,
    main,
    render_schemas,
)
from contracts.settings import Settings
from contracts.topics import topic_specs
from contracts.transaction import TransactionEvent

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "schemas"
RENDERED = render_schemas()
JSON_FILES = sorted(name for name in RENDERED if name.endswith(".json"))


def schema(name: str) -> dict[str, Any]:
    return json.loads(RENDERED[name])


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    return yaml.safe_load(RENDERED[ASYNCAPI_FILE])


# ---- the files ------------------------------------------------------------------------


def test_committed_schemas_match_the_models() -> None:
    drift = drifted_files(COMMITTED)
    assert not drift, (
        "schemas/ is out of date with the contract models; run `make schemas` "
        f"(python -m contracts.schema_export) and commit the result. Drifted: {drift}"
    )


def test_one_schema_per_command_and_event_type() -> None:
    expected = {
        ASYNCAPI_FILE,
        "commands/command.schema.json",
        "events/event.schema.json",
        "transaction_event.schema.json",
        "fraud_alert.schema.json",
        *(f"commands/{t.value}.schema.json" for t in CommandType),
        *(f"events/{t.value}.schema.json" for t in EventType),
    }
    assert set(RENDERED) == expected


def test_rendering_is_exact_text(tmp_path: Path) -> None:
    for name, text in RENDERED.items():
        assert text.endswith("\n") and not text.endswith("\n\n"), name
    for name in JSON_FILES:
        assert (
            RENDERED[name]
            == json.dumps(schema(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )


def test_export_writes_files_and_check_reports_drift(tmp_path: Path) -> None:
    written = export_schemas(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(RENDERED)
    assert main(["--out", str(tmp_path), "--check"]) == 0

    (tmp_path / "commands/ping.schema.json").write_text("{}\n")
    (tmp_path / "events/worker.retired.schema.json").write_text("{}\n")
    assert drifted_files(tmp_path) == [
        "commands/ping.schema.json",
        "events/worker.retired.schema.json",
    ]
    assert main(["--out", str(tmp_path), "--check"]) == 1

    export_schemas(tmp_path)  # rewrites the edited file and removes the stale one
    assert drifted_files(tmp_path) == []


@pytest.mark.parametrize("name", JSON_FILES)
def test_json_schema_is_valid_2020_12_with_id_and_annotations(name: str) -> None:
    doc = schema(name)
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == JSON_SCHEMA_DIALECT
    assert doc["$id"] == SCHEMA_BASE_URI + name
    assert doc["title"] and doc["description"]


@pytest.mark.parametrize("name", JSON_FILES)
def test_examples_in_schema_files_validate(name: str) -> None:
    for example in schema(name).get("examples", []):
        validator(name).validate(example)


# ---- commands: the schema and decode_command agree ------------------------------------

VALID_COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("ping", {}),
    ("start_stream", {}),
    ("start_stream", {"topic": "transactions-stream", "starting_offsets": "latest"}),
    ("stop_stream", {}),
    (
        "run_batch",
        {
            "analysis_type": "full_report",
            "source": {"kind": "delta", "start_date": "2025-01-01", "end_date": "2025-01-07"},
        },
    ),
    (
        "run_batch",
        {
            "batch_id": "b_1",
            "analysis_type": "payment_analysis",
            "source": {
                "kind": "kafka",
                "topic": "transactions-batch",
                "start_offset": "earliest",
                "end_offset": {"0": 100, "1": 100, "2": -1},
            },
            "filters": {"payment_method": ["upi", "wallet"], "channel": "web"},
        },
    ),
    ("cancel_batch", {"batch_id": "b_1"}),
    ("shutdown", {}),
    ("shutdown", {"drain_timeout_seconds": 0}),
]


@pytest.mark.parametrize(("ctype", "payload"), VALID_COMMANDS)
def test_commands_built_by_new_command_validate(ctype: str, payload: dict[str, Any]) -> None:
    message = orjson.loads(new_command(ctype, payload, issued_by="tests").encode())
    validator(f"commands/{ctype}.schema.json").validate(message)
    validator("commands/command.schema.json").validate(message)


def _ping() -> dict[str, Any]:
    return orjson.loads(new_command("ping", command_id="c-1").encode())


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not _DROP}


_DROP = object()
_BATCH_PAYLOAD = {
    "analysis_type": "revenue_by_region",
    "source": {"kind": "delta", "start_date": "2025-01-01", "end_date": "2025-01-31"},
}

INVALID_COMMANDS: list[tuple[str, dict[str, Any], ErrorCode]] = [
    ("no command_id", _with(_ping(), command_id=_DROP), ErrorCode.INVALID_REQUEST),
    ("empty command_id", _with(_ping(), command_id=""), ErrorCode.INVALID_REQUEST),
    ("command_id too long", _with(_ping(), command_id="x" * 129), ErrorCode.INVALID_REQUEST),
    ("no schema_version", _with(_ping(), schema_version=_DROP), ErrorCode.INVALID_REQUEST),
    (
        "future schema_version",
        _with(_ping(), schema_version=2),
        ErrorCode.UNSUPPORTED_SCHEMA_VERSION,
    ),
    ("no type", _with(_ping(), type=_DROP), ErrorCode.INVALID_REQUEST),
    ("unknown type", _with(_ping(), type="explode"), ErrorCode.UNKNOWN_COMMAND),
    ("no issued_at", _with(_ping(), issued_at=_DROP), ErrorCode.INVALID_REQUEST),
    (
        "unknown analysis",
        _with(_ping(), type="run_batch", payload={**_BATCH_PAYLOAD, "analysis_type": "astrology"}),
        ErrorCode.INVALID_REQUEST,
    ),
    (
        "bad batch_id",
        _with(_ping(), type="run_batch", payload={**_BATCH_PAYLOAD, "batch_id": "-x"}),
        ErrorCode.INVALID_REQUEST,
    ),
    (
        "unknown source kind",
        _with(_ping(), type="run_batch", payload={**_BATCH_PAYLOAD, "source": {"kind": "s3"}}),
        ErrorCode.INVALID_REQUEST,
    ),
    (
        "delta source without end_date",
        _with(
            _ping(),
            type="run_batch",
            payload={**_BATCH_PAYLOAD, "source": {"kind": "delta", "start_date": "2025-01-01"}},
        ),
        ErrorCode.INVALID_REQUEST,
    ),
    (
        "run_batch without payload",
        _with(_ping(), type="run_batch", payload=_DROP),
        ErrorCode.INVALID_REQUEST,
    ),
    (
        "bad starting_offsets",
        _with(_ping(), type="start_stream", payload={"starting_offsets": "middle"}),
        ErrorCode.INVALID_REQUEST,
    ),
    (
        "zero trigger",
        _with(_ping(), type="start_stream", payload={"trigger_seconds": 0}),
        ErrorCode.INVALID_REQUEST,
    ),
    (
        "cancel without batch_id",
        _with(_ping(), type="cancel_batch", payload={}),
        ErrorCode.INVALID_REQUEST,
    ),
    (
        "negative drain timeout",
        _with(_ping(), type="shutdown", payload={"drain_timeout_seconds": -1}),
        ErrorCode.INVALID_REQUEST,
    ),
]


@pytest.mark.parametrize(
    ("message", "code"),
    [(m, c) for _, m, c in INVALID_COMMANDS],
    ids=[label for label, _, _ in INVALID_COMMANDS],
)
def test_decoder_and_schema_both_reject(message: dict[str, Any], code: ErrorCode) -> None:
    assert not validator("commands/command.schema.json").is_valid(message)
    with pytest.raises(ContractError) as info:
        decode_command(orjson.dumps(message))
    assert info.value.code == code
    ctype = message.get("type")
    if ctype in {t.value for t in CommandType}:
        assert not validator(f"commands/{ctype}.schema.json").is_valid(message)


def test_unknown_fields_are_allowed_by_both() -> None:
    message = {**_ping(), "trace_id": "abc", "payload": {"extra": 1}}
    validator("commands/ping.schema.json").validate(message)
    decode_command(orjson.dumps(message))


# ---- events and transactions ----------------------------------------------------------


def test_events_made_by_the_worker_validate() -> None:
    health = WorkerHealth(
        worker_id="w-1", spark_alive=True, uptime_seconds=1.5, stream=StreamHealth()
    )
    heartbeat = make_event(EventType.WORKER_HEARTBEAT, worker_subject("w-1"), "w-1", health)
    record = BatchRecord(
        batch_id="b1",
        status=BatchStatus.PENDING,
        analysis_type="hourly_trends",
        source={"kind": "delta", "start_date": "2025-01-01", "end_date": "2025-01-02"},
        submitted_at="2025-01-15T00:00:00Z",
    )
    pending = make_event(
        EventType.BATCH_PENDING, batch_subject("b1"), "w-1", record, command_id="c"
    )
    for event in (heartbeat, pending):
        message = orjson.loads(event.encode())
        validator(f"events/{event.type.value}.schema.json").validate(message)
        validator("events/event.schema.json").validate(message)


def test_event_schema_fixes_type_and_data() -> None:
    message = orjson.loads(RENDERED["events/worker.pong.schema.json"])["examples"][0]
    assert not validator("events/worker.pong.schema.json").is_valid(
        {**message, "type": "worker.started"}
    )
    assert not validator("events/event.schema.json").is_valid({**message, "data": {"uptime": 1}})
    assert not validator("events/event.schema.json").is_valid(
        {**message, "type": "worker.exploded"}
    )


def test_transaction_schema_agrees_with_the_model() -> None:
    sample = schema("transaction_event.schema.json")["examples"][0]
    TransactionEvent.decode(orjson.dumps(sample))
    for bad in (
        {**sample, "quantity": 0},
        {**sample, "currency": "usd"},
        {**sample, "category": "x"},
    ):
        assert not validator("transaction_event.schema.json").is_valid(bad)
        with pytest.raises(ContractError):
            TransactionEvent.decode(orjson.dumps(bad))


# ---- the AsyncAPI document ------------------------------------------------------------


def _walk_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        refs = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return refs + [r for value in node.values() for r in _walk_refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _walk_refs(item)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node: Any = doc
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
        node = node[part]
    return node


def _payload_validator(doc: dict[str, Any], payload: dict[str, Any]) -> Draft7Validator:
    # AsyncAPI's default schema format is a superset of draft-07; the document's components
    # ride along at the root so `#/components/schemas/...` resolves.
    return Draft7Validator({**payload, "components": doc["components"]})


def test_asyncapi_top_level(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert next(iter(asyncapi)) == "asyncapi"
    info = asyncapi["info"]
    assert info["title"] and info["version"] and info["description"]
    local = asyncapi["servers"]["local"]
    assert local["host"] == Settings.model_fields["kafka_bootstrap"].default
    assert local["protocol"] == "kafka"


def test_every_ref_resolves(asyncapi: dict[str, Any]) -> None:
    refs = _walk_refs(asyncapi)
    assert len(refs) > 50
    for ref in refs:
        _resolve(asyncapi, ref)


def test_channels_match_the_topic_specs(asyncapi: dict[str, Any]) -> None:
    defaults = Settings.model_construct()
    specs = {spec.name: spec for spec in topic_specs(defaults)}
    channels = asyncapi["channels"]
    assert (
        set(channels)
        == set(specs)
        == {
            "pipeline-commands",
            "pipeline-events",
            "transactions-stream",
            "transactions-batch",
            "pipeline-dlq",
            "fraud-alerts",
        }
    )
    for name, channel in channels.items():
        spec = specs[name]
        kafka = channel["bindings"]["kafka"]
        assert channel["address"] == name
        assert kafka["partitions"] == spec.partitions
        config = kafka["topicConfiguration"]
        assert config["cleanup.policy"] == spec.config["cleanup.policy"].split(",")
        if "retention.ms" in spec.config:
            assert config["retention.ms"] == int(spec.config["retention.ms"])
    assert channels["pipeline-events"]["bindings"]["kafka"]["topicConfiguration"][
        "cleanup.policy"
    ] == ["compact"]
    assert set(channels["pipeline-commands"]["messages"]) == {t.value for t in CommandType}
    assert set(channels["pipeline-events"]["messages"]) == {t.value for t in EventType}


def test_operations_reference_their_own_channel_messages(asyncapi: dict[str, Any]) -> None:
    operations = asyncapi["operations"]
    assert {"worker.receiveCommands", "worker.sendEvents", "client.sendCommands"} <= set(operations)
    assert {"client.receiveEvents", "worker.receiveTransactions", "worker.sendDeadLetters"} <= set(
        operations
    )
    for name, operation in operations.items():
        assert operation["action"] in {"send", "receive"}, name
        channel_ref = operation["channel"]["$ref"]
        _resolve(asyncapi, channel_ref)
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), name
        if "reply" in operation:
            reply_ref = operation["reply"]["channel"]["$ref"]
            for message in operation["reply"]["messages"]:
                assert message["$ref"].startswith(reply_ref + "/messages/"), name
    for name in ("worker.receiveCommands", "client.sendCommands"):
        replies = {m["$ref"].rsplit("/", 1)[1] for m in operations[name]["reply"]["messages"]}
        assert replies == {"command.accepted", "command.rejected"}


def test_component_schemas_are_valid_asyncapi_schemas(asyncapi: dict[str, Any]) -> None:
    for name, component in asyncapi["components"]["schemas"].items():
        Draft7Validator.check_schema(component)
        assert not isinstance(component.get("discriminator", ""), dict), name


def test_every_asyncapi_example_validates_against_its_payload(asyncapi: dict[str, Any]) -> None:
    checked = 0
    for name, message in asyncapi["components"]["messages"].items():
        payload_validator = _payload_validator(asyncapi, message["payload"])
        for example in message.get("examples", []):
            payload_validator.validate(example["payload"])
            checked += 1
        if "headers" in message:
            Draft7Validator.check_schema(message["headers"])
        assert "key" in message["bindings"]["kafka"], name
    assert checked >= len(CommandType) + 5 + 1


def test_asyncapi_examples_decode_with_the_contract(asyncapi: dict[str, Any]) -> None:
    messages = asyncapi["components"]["messages"]
    commands = {m["name"]: m for m in messages.values() if m["name"] in set(CommandType)}
    assert set(commands) == {t.value for t in CommandType}
    for ctype, message in commands.items():
        assert message["examples"], f"{ctype} has no example"
        for example in message["examples"]:
            assert decode_command(orjson.dumps(example["payload"])).type == ctype
    events = [m for m in messages.values() if m["name"] in set(EventType)]
    assert sum(bool(m.get("examples")) for m in events) >= 5
    for message in events:
        for example in message.get("examples", []):
            event = decode_event(orjson.dumps(example["payload"]))
            assert event.type == message["name"]
            assert isinstance(event.typed_data(), EVENT_DATA_MODELS[event.type])
    (transaction,) = messages["TransactionEvent"]["examples"]
    TransactionEvent.decode(orjson.dumps(transaction["payload"]))


def test_invalid_payloads_fail_against_asyncapi_payloads(asyncapi: dict[str, Any]) -> None:
    messages = asyncapi["components"]["messages"]
    run_batch = messages["RunBatchCommand"]
    example = run_batch["examples"][0]["payload"]
    bad = {**example, "payload": {**example["payload"], "analysis_type": "astrology"}}
    assert not _payload_validator(asyncapi, run_batch["payload"]).is_valid(bad)
    union = {"$ref": "#/components/schemas/Command"}
    assert _payload_validator(asyncapi, union).is_valid(example)
    assert not _payload_validator(asyncapi, union).is_valid({**example, "type": "explode"})


# The official AsyncAPI 3.0.0 JSON Schema (npm @asyncapi/specs 6.11.1, schemas/3.0.0.json,
# Apache-2.0), vendored because no PyPI package ships it.
OFFICIAL_ASYNCAPI_SCHEMA = Path(__file__).parents[1] / "data" / "asyncapi-3.0.0.schema.json"


def test_asyncapi_validates_against_the_official_schema(asyncapi: dict[str, Any]) -> None:
    path = Path(os.environ.get("ASYNCAPI_SPEC_SCHEMA", OFFICIAL_ASYNCAPI_SCHEMA))
    official = json.loads(path.read_text())
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in Draft7Validator(official).iter_errors(asyncapi)
    ]
    assert not errors, errors[:5]
