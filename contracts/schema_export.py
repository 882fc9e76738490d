"""JSON Schemas and the AsyncAPI 3.0 document, generated from the contract models.

Clients in any language build commands and read events from these files (docs/design.md),
so every schema is derived from the pydantic models in `contracts`, never written by hand:
`render_schemas()` is pure and deterministic, `export_schemas()` writes it, and `--check`
lets CI fail when the committed files drift from the models.

    python -m contracts.schema_export [--out DIR] [--check]
"""

from __future__ import annotations

import argparse
import functools
import json
import operator
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import yaml
from pydantic import BaseModel, Field, TypeAdapter, create_model

from contracts import fraud_examples
from contracts import medallion_examples as medallion
from contracts import schedule_examples as schedules
from contracts.commands import COMMAND_MODELS, SCHEMA_VERSION, CommandType, decode_command
from contracts.errors import ContractError
from contracts.events import (
    EVENT_DATA_MODELS,
    BatchCounts,
    BatchRecord,
    BatchStatus,
    CommandAcceptedData,
    CommandRejectedData,
    ErrorInfo,
    Event,
    EventType,
    StreamHealth,
    StreamLifecycle,
    StreamProgress,
    TablePointer,
    WorkerHealth,
    batch_subject,
    stream_progress_subject,
    stream_subject,
    worker_subject,
)
from contracts.fraud import FraudAlert
from contracts.settings import Settings
from contracts.topics import TopicSpec, topic_specs
from contracts.transaction import TransactionEvent

SCHEMA_BASE_URI = "https://kafka-pipeline-worker.local/schemas/v1/"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_FILE = "asyncapi.yaml"
GENERATED_NOTE = "Generated from the pydantic models by `python -m contracts.schema_export`."
KAFKA_BINDING_VERSION = "0.5.0"
_COMPONENT_REF = "#/components/schemas/{model}"

# What each message means. The models carry the shape; these lines carry the intent, and a
# model's own docstring wins over them when it has one.
_COMMAND_DOCS: dict[CommandType, str] = {
    CommandType.PING: "Ask the worker for its health; answered by `worker.pong`.",
    CommandType.START_STREAM: (
        "Start the streaming ingest (Kafka `transactions-stream` -> `bronze.transactions` -> "
        "`silver.transactions`, with quarantine, quality metrics and the gold dashboard)."
    ),
    CommandType.STOP_STREAM: "Stop the streaming ingest at a micro-batch boundary.",
    CommandType.RUN_BATCH: (
        "Run an on-demand batch analysis over a bounded Kafka range or the Delta history."
    ),
    CommandType.CANCEL_BATCH: "Cancel a pending or running batch.",
    CommandType.SHUTDOWN: "Stop the worker gracefully, draining batches within the timeout.",
    **medallion.COMMAND_DOCS,
    **schedules.COMMAND_DOCS,
}
_EVENT_DOCS: dict[EventType, str] = {
    EventType.WORKER_STARTED: "The worker is up and taking commands.",
    EventType.WORKER_HEARTBEAT: "Periodic health: Spark alive, uptime, stream state, batches.",
    EventType.WORKER_PONG: "The answer to a `ping` command, with the worker's health.",
    EventType.WORKER_STOPPING: "The worker began a graceful shutdown.",
    EventType.WORKER_STOPPED: "The worker stopped.",
    EventType.COMMAND_ACCEPTED: "The command is valid and was dispatched (or is a duplicate).",
    EventType.COMMAND_REJECTED: "The command was refused, with an error code and message.",
    EventType.STREAM_STARTED: "The streaming ingest is running.",
    EventType.STREAM_PROGRESS: "One micro-batch of the streaming ingest.",
    EventType.STREAM_STOPPED: "The streaming ingest stopped.",
    EventType.STREAM_FAILED: "The streaming ingest failed.",
    EventType.BATCH_PENDING: "A batch waits for a slot; carries the full batch record.",
    EventType.BATCH_RUNNING: "A batch is running; carries the full batch record.",
    EventType.BATCH_COMPLETED: (
        "A batch finished; the record points at its raw and aggregated Delta tables."
    ),
    EventType.BATCH_FAILED: "A batch failed; the record carries the error.",
    EventType.BATCH_CANCELLED: "A batch was cancelled; carries the full batch record.",
    EventType.MODEL_LOADED: (
        "The stream loaded a newer trained fraud model; it scores with it from now on."
    ),
    EventType.MODEL_FAILED: (
        "A stored fraud model version could not be loaded; the stream keeps the model it "
        "had (or scores without one)."
    ),
    **medallion.EVENT_DOCS,
    **schedules.EVENT_DOCS,
}


# ---- wire models ----------------------------------------------------------------------


@functools.cache
def command_wire_models() -> dict[CommandType, type[BaseModel]]:
    """Each command model as it is on the wire.

    `decode_command` requires `schema_version` and `type` before pydantic sees the message,
    so these subclasses declare both without defaults and the schema marks them required.
    """
    return {
        ctype: create_model(
            model.__name__,
            __base__=model,
            __module__=__name__,
            __doc__=model.__doc__ or _COMMAND_DOCS[ctype],
            schema_version=(Literal[SCHEMA_VERSION], ...),
            type=(Literal[ctype.value], ...),
        )
        for ctype, model in COMMAND_MODELS.items()
    }


@functools.cache
def event_wire_models() -> dict[EventType, type[BaseModel]]:
    """The Event envelope narrowed per type: `type` fixed, `data` the type's data model."""
    return {
        etype: create_model(
            "".join(part.capitalize() for part in etype.value.split(".")) + "Event",
            __base__=Event,
            __module__=__name__,
            __doc__=f"`{etype.value}`: {_EVENT_DOCS[etype]}",
            type=(Literal[etype.value], ...),
            data=(EVENT_DATA_MODELS[etype], ...),
        )
        for etype in EventType
    }


def _tagged_union(models: Iterable[type[BaseModel]]) -> Any:
    return Annotated[functools.reduce(operator.or_, models), Field(discriminator="type")]


# ---- examples (built through the contract, so valid by construction) -------------------

_WORKER_ID = "worker-1"
_ISSUED_AT = "2025-01-15T14:35:00Z"
_ISSUED_BY = "pipeline-cli@analyst-laptop"


def _command(ctype: CommandType, command_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What `new_command` sends, with a fixed id and time so the export is reproducible."""
    raw = {
        "schema_version": SCHEMA_VERSION,
        "command_id": command_id,
        "type": ctype.value,
        "issued_at": _ISSUED_AT,
        "issued_by": _ISSUED_BY,
        "payload": payload,
    }
    return orjson.loads(decode_command(orjson.dumps(raw)).encode())


@functools.cache
def _command_examples() -> dict[CommandType, list[tuple[str, str, dict[str, Any]]]]:
    """(name, summary, message) per command type."""
    c = CommandType
    return {
        c.PING: [
            ("ping", "Health check", _command(c.PING, "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a01", {}))
        ],
        c.START_STREAM: [
            (
                "start_stream_from_earliest",
                "Start the ingest from the beginning of the topic",
                _command(
                    c.START_STREAM,
                    "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a02",
                    {"starting_offsets": "earliest", "trigger_seconds": 5},
                ),
            )
        ],
        c.STOP_STREAM: [
            (
                "stop_stream",
                "Stop the ingest",
                _command(c.STOP_STREAM, "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a03", {}),
            )
        ],
        c.RUN_BATCH: [
            (
                "run_batch_over_delta_history",
                "Revenue by category for January, west and north regions only",
                _command(
                    c.RUN_BATCH,
                    "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a04",
                    {
                        "batch_id": "revenue-2025-01",
                        "analysis_type": "revenue_by_category",
                        "source": {
                            "kind": "delta",
                            "start_date": "2025-01-01",
                            "end_date": "2025-01-31",
                        },
                        "filters": {"region": ["west", "north"]},
                    },
                ),
            ),
            (
                "run_batch_over_kafka_range",
                "Fraud analysis over a bounded Kafka range of electronics sales",
                _command(
                    c.RUN_BATCH,
                    "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a05",
                    {
                        "batch_id": "fraud-replay-42",
                        "analysis_type": "fraud_analysis",
                        "source": {
                            "kind": "kafka",
                            "topic": "transactions-batch",
                            "start_offset": {"0": 0, "1": 0, "2": 0},
                            "end_offset": "latest",
                        },
                        "filters": {"category": "electronics", "is_fraudulent": True},
                    },
                ),
            ),
        ],
        c.CANCEL_BATCH: [
            (
                "cancel_batch",
                "Cancel a running batch",
                _command(
                    c.CANCEL_BATCH,
                    "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a06",
                    {"batch_id": "fraud-replay-42"},
                ),
            )
        ],
        c.SHUTDOWN: [
            (
                "shutdown",
                "Graceful shutdown, draining batches for up to 30 s",
                _command(
                    c.SHUTDOWN,
                    "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a07",
                    {"drain_timeout_seconds": 30},
                ),
            )
        ],
        **medallion.command_examples(_command),
        **schedules.command_examples(_command),
    }


def _event(
    etype: EventType,
    subject: str,
    occurred_at: str,
    data: BaseModel,
    *,
    event_id: str,
    command_id: str | None = None,
) -> dict[str, Any]:
    """An event exactly as the worker encodes it, checked against the type's data model."""
    event = Event(
        event_id=event_id,
        type=etype,
        subject=subject,
        occurred_at=occurred_at,
        worker_id=_WORKER_ID,
        command_id=command_id,
        data=data.model_dump(mode="json"),
    )
    event.typed_data()
    return orjson.loads(event.encode())


def _sample_command(ctype: CommandType, index: int = 0) -> dict[str, Any]:
    return _command_examples()[ctype][index][2]


def _rejection() -> tuple[str, ContractError]:
    """A real rejection: `decode_command`'s own answer to an unknown command type."""
    command_id = "6f1c2b9e-0c1d-4e5f-8a9b-0c1d2e3f4a08"
    raw = {**_sample_command(CommandType.PING), "command_id": command_id, "type": "explode"}
    try:
        decode_command(orjson.dumps(raw))
    except ContractError as exc:
        return command_id, exc
    raise AssertionError("an unknown command type must be rejected")


@functools.cache
def _event_examples() -> dict[EventType, list[tuple[str, str, dict[str, Any]]]]:
    """(name, summary, message) for the event types a client most often handles."""
    e = EventType
    ping = _sample_command(CommandType.PING)
    start = _sample_command(CommandType.START_STREAM)
    delta_batch = _sample_command(CommandType.RUN_BATCH, 0)
    kafka_batch = _sample_command(CommandType.RUN_BATCH, 1)
    query_id = "3b0e6b7c-5a4d-4c3b-9a1f-2e3d4c5b6a70"
    stream_started_at = "2025-01-15T14:30:02.512Z"
    rejected_id, rejection = _rejection()
    batch_root = "/data/delta/batches"
    return {
        e.WORKER_PONG: [
            (
                "worker_pong",
                "Health answer to a ping",
                _event(
                    e.WORKER_PONG,
                    worker_subject(_WORKER_ID),
                    "2025-01-15T14:35:00.214Z",
                    WorkerHealth(
                        worker_id=_WORKER_ID,
                        status="ready",
                        spark_alive=True,
                        spark_version="4.2.0",
                        spark_master="local[*]",
                        uptime_seconds=3605.2,
                        stream=StreamHealth(
                            state="running",
                            query_id=query_id,
                            topic="transactions-stream",
                            started_at=stream_started_at,
                        ),
                        batches=BatchCounts(running=1, completed=12, failed=1),
                        kafka_bootstrap="kafka:29092",
                        version="0.1.0",
                    ),
                    event_id="0b9d7a61-7f0e-4d42-b1c5-000000000001",
                    command_id=ping["command_id"],
                ),
            )
        ],
        e.COMMAND_ACCEPTED: [
            (
                "run_batch_accepted",
                "A run_batch command was accepted",
                _event(
                    e.COMMAND_ACCEPTED,
                    f"command/{delta_batch['command_id']}",
                    "2025-01-15T14:35:00.108Z",
                    CommandAcceptedData(
                        command_type="run_batch", batch_id=delta_batch["payload"]["batch_id"]
                    ),
                    event_id="0b9d7a61-7f0e-4d42-b1c5-000000000002",
                    command_id=delta_batch["command_id"],
                ),
            )
        ],
        e.COMMAND_REJECTED: [
            (
                "unknown_command_rejected",
                "A command of an unknown type was rejected",
                _event(
                    e.COMMAND_REJECTED,
                    f"command/{rejected_id}",
                    "2025-01-15T14:35:00.131Z",
                    CommandRejectedData(
                        code=rejection.code,
                        message=rejection.message,
                        command_type="explode",
                        topic="pipeline-commands",
                        partition=0,
                        offset=418,
                    ),
                    event_id="0b9d7a61-7f0e-4d42-b1c5-000000000003",
                    command_id=rejected_id,
                ),
            )
        ],
        e.STREAM_STARTED: [
            (
                "stream_started",
                "The ingest started after a start_stream command",
                _event(
                    e.STREAM_STARTED,
                    stream_subject(),
                    stream_started_at,
                    StreamLifecycle(
                        state="running",
                        query_id=query_id,
                        topic="transactions-stream",
                        starting_offsets=start["payload"]["starting_offsets"],
                        trigger_seconds=start["payload"]["trigger_seconds"],
                        tables=medallion.stream_tables(),
                    ),
                    event_id="0b9d7a61-7f0e-4d42-b1c5-000000000004",
                    command_id=start["command_id"],
                ),
            )
        ],
        e.STREAM_PROGRESS: [
            (
                "stream_progress",
                "One micro-batch: 250 rows in, 3 quarantined",
                _event(
                    e.STREAM_PROGRESS,
                    stream_progress_subject(),
                    "2025-01-15T14:34:55.020Z",
                    StreamProgress(
                        query_id=query_id,
                        batch_id=118,
                        rows_in=250,
                        rows_written=247,
                        rows_quarantined=3,
                        rows_per_second=49.8,
                        batch_duration_ms=812,
                        offsets={"transactions-stream": {"0": 10234, "1": 10187, "2": 10301}},
                        total_rows_written=29410,
                        total_rows_quarantined=57,
                        **medallion.progress_fields(),
                    ),
                    event_id="0b9d7a61-7f0e-4d42-b1c5-000000000005",
                ),
            )
        ],
        e.BATCH_COMPLETED: [
            (
                "batch_completed",
                "A batch finished, with pointers to its Delta tables",
                _event(
                    e.BATCH_COMPLETED,
                    batch_subject(delta_batch["payload"]["batch_id"]),
                    "2025-01-15T14:35:43.902Z",
                    BatchRecord(
                        batch_id=delta_batch["payload"]["batch_id"],
                        status=BatchStatus.COMPLETED,
                        analysis_type="revenue_by_category",
                        analyses=["revenue_by_category"],
                        source=delta_batch["payload"]["source"],
                        filters=delta_batch["payload"]["filters"],
                        command_id=delta_batch["command_id"],
                        submitted_at="2025-01-15T14:35:00.108Z",
                        started_at="2025-01-15T14:35:00.240Z",
                        finished_at="2025-01-15T14:35:43.880Z",
                        duration_seconds=43.64,
                        row_count=182340,
                        raw=TablePointer(
                            path=f"{batch_root}/revenue-2025-01/raw",
                            version=0,
                            row_count=182340,
                        ),
                        aggregated={
                            "revenue_by_category": TablePointer(
                                path=f"{batch_root}/revenue-2025-01/aggregated/revenue_by_category",
                                version=0,
                                row_count=10,
                            )
                        },
                        attempts=1,
                        worker_id=_WORKER_ID,
                    ),
                    event_id="0b9d7a61-7f0e-4d42-b1c5-000000000006",
                    command_id=delta_batch["command_id"],
                ),
            )
        ],
        e.BATCH_FAILED: [
            (
                "batch_failed",
                "A batch failed because its Kafka source could not be read",
                _event(
                    e.BATCH_FAILED,
                    batch_subject(kafka_batch["payload"]["batch_id"]),
                    "2025-01-15T14:36:10.377Z",
                    BatchRecord(
                        batch_id=kafka_batch["payload"]["batch_id"],
                        status=BatchStatus.FAILED,
                        analysis_type="fraud_analysis",
                        analyses=["fraud_analysis"],
                        source=kafka_batch["payload"]["source"],
                        filters=kafka_batch["payload"]["filters"],
                        command_id=kafka_batch["command_id"],
                        submitted_at="2025-01-15T14:36:01.005Z",
                        started_at="2025-01-15T14:36:01.120Z",
                        finished_at="2025-01-15T14:36:10.350Z",
                        duration_seconds=9.23,
                        error=ErrorInfo(
                            code="SOURCE_ERROR",
                            message="topic transactions-batch: offsets for partition 2 were "
                            "deleted by retention",
                        ),
                        attempts=1,
                        worker_id=_WORKER_ID,
                    ),
                    event_id="0b9d7a61-7f0e-4d42-b1c5-000000000007",
                    command_id=kafka_batch["command_id"],
                ),
            )
        ],
        **medallion.event_examples(_event, _sample_command(CommandType.BACKFILL)),
        **schedules.event_examples(_event, _sample_command(CommandType.SCHEDULE_BATCH),
                                   _sample_command(CommandType.UNSCHEDULE_BATCH)),
    }


# The example record of docs/transaction-record.md, as produced to Kafka.
SAMPLE_TRANSACTION: dict[str, Any] = {
    "transaction_id": "a3f8e2b1-7c44-4d12-9e56-1a2b3c4d5e6f",
    "event_timestamp": "2025-01-15T14:32:07.123Z",
    "processing_timestamp": None,
    "customer_id": "CUST-00042871",
    "customer_tier": "gold",
    "product_id": "SKU-ELC-00912",
    "product_name": "Sony WH-1000XM5 Headphones",
    "category": "electronics",
    "sub_category": "audio_headphones",
    "brand": "Sony",
    "quantity": 2,
    "unit_price": 349.99,
    "discount_percent": 15.0,
    "total_amount": 594.98,
    "tax_amount": 53.55,
    "currency": "USD",
    "payment_method": "credit_card",
    "card_network": "visa",
    "transaction_status": "completed",
    "channel": "mobile_app",
    "store_id": None,
    "region": "west",
    "city": "Mumbai",
    "state": "MH",
    "postal_code": "400001",
    "device_type": "android",
    "session_id": "sess-8a7b6c5d4e3f",
    "ip_address": "192.168.xxx.xxx",
    "is_fraudulent": False,
    "fraud_score": 0.03,
    "batch_id": None,
}


def _transaction_example() -> dict[str, Any]:
    return TransactionEvent.model_validate(SAMPLE_TRANSACTION).to_json_dict()


# ---- standalone JSON Schema files -----------------------------------------------------


def _file_schema(
    rel_path: str,
    schema: dict[str, Any],
    examples: Sequence[dict[str, Any]] = (),
    **annotations: str,
) -> dict[str, Any]:
    """A self-contained draft 2020-12 schema file with its `$id` and annotations."""
    out: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_BASE_URI + rel_path,
        "$comment": GENERATED_NOTE,
        **schema,
        **annotations,
    }
    if examples:
        out["examples"] = list(examples)
    return out


def json_schema_documents() -> dict[str, dict[str, Any]]:
    """Relative file name -> JSON Schema, for every command type, event type and the record."""
    docs: dict[str, dict[str, Any]] = {}
    command_models = command_wire_models()
    command_examples = _command_examples()
    for ctype, model in command_models.items():
        rel = f"commands/{ctype.value}.schema.json"
        examples = [message for _, _, message in command_examples.get(ctype, [])]
        docs[rel] = _file_schema(rel, model.model_json_schema(), examples)
    rel = "commands/command.schema.json"
    docs[rel] = _file_schema(
        rel,
        TypeAdapter(_tagged_union(command_models.values())).json_schema(),
        [m for ctype in command_models for _, _, m in command_examples.get(ctype, [])],
        title="Command",
        description="Any message on the commands topic, discriminated by `type`.",
    )

    event_models = event_wire_models()
    event_examples = _event_examples()
    for etype, model in event_models.items():
        rel = f"events/{etype.value}.schema.json"
        examples = [message for _, _, message in event_examples.get(etype, [])]
        docs[rel] = _file_schema(rel, model.model_json_schema(), examples)
    rel = "events/event.schema.json"
    docs[rel] = _file_schema(
        rel,
        TypeAdapter(_tagged_union(event_models.values())).json_schema(),
        [m for etype in event_models for _, _, m in event_examples.get(etype, [])],
        title="Event",
        description="Any message on the events topic, discriminated by `type`.",
    )

    rel = "transaction_event.schema.json"
    docs[rel] = _file_schema(rel, TransactionEvent.model_json_schema(), [_transaction_example()])

    rel = "fraud_alert.schema.json"
    docs[rel] = _file_schema(rel, FraudAlert.model_json_schema(),
                             [m for _, _, m in fraud_examples.fraud_alert_examples()])
    return docs


# ---- AsyncAPI -------------------------------------------------------------------------


def _default_settings() -> Settings:
    """Settings defaults, not this shell's environment, so the export is reproducible."""
    return Settings.model_construct()


def _asyncapi_schema(schema: Any) -> Any:
    """JSON Schema -> AsyncAPI Schema Object: its `discriminator` is the property name only."""
    if isinstance(schema, dict):
        out = {key: _asyncapi_schema(value) for key, value in schema.items()}
        disc = schema.get("discriminator")
        if isinstance(disc, dict) and "propertyName" in disc:
            out["discriminator"] = disc["propertyName"]
        return out
    if isinstance(schema, list):
        return [_asyncapi_schema(item) for item in schema]
    return schema


def component_schemas() -> dict[str, Any]:
    """Every payload schema in one namespace, referenced as `#/components/schemas/<Name>`."""
    commands = list(command_wire_models().values())
    events = list(event_wire_models().values())
    inputs: list[tuple[str, Any, TypeAdapter[Any]]] = [
        (model.__name__, "validation", TypeAdapter(model))
        for model in [*commands, *events, TransactionEvent, FraudAlert]
    ]
    unions = {
        "Command": ("Any command, discriminated by `type`.", _tagged_union(commands)),
        "Event": ("Any event, discriminated by `type`.", _tagged_union(events)),
    }
    inputs += [(name, "validation", TypeAdapter(tp)) for name, (_, tp) in unions.items()]
    keyed, defs = TypeAdapter.json_schemas(inputs, ref_template=_COMPONENT_REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    for name, (description, _) in unions.items():
        if name in schemas:
            raise RuntimeError(f"component schema name {name!r} is taken by a model")
        schemas[name] = {**keyed[(name, "validation")], "title": name, "description": description}
    return _asyncapi_schema(schemas)


def _coerce(value: str) -> int | float | str:
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def _channel_bindings(spec: TopicSpec) -> dict[str, Any]:
    """Kafka channel binding 0.5.0 from the topic spec the worker creates topics with."""
    config: dict[str, Any] = {}
    for key, value in sorted(spec.config.items()):
        config[key] = value.split(",") if key == "cleanup.policy" else _coerce(value)
    return {
        "kafka": {
            "partitions": spec.partitions,
            "topicConfiguration": config,
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _key_schema(spec: TopicSpec, model: type[BaseModel] | None, meaning: str) -> dict[str, Any]:
    """The Kafka record key: the model field it is taken from, when there is one."""
    schema: dict[str, Any] = {}
    if model is not None and spec.key in model.model_fields:
        schema = dict(model.model_json_schema()["properties"][spec.key])
        schema.pop("title", None)
    return {**schema, "description": meaning}


def _message(
    name: str,
    title: str,
    summary: str,
    payload: dict[str, Any],
    key: dict[str, Any],
    examples: Sequence[tuple[str, str, Any]],
    content_type: str = "application/json",
    headers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": content_type,
        "payload": payload,
        "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING_VERSION}},
    }
    if headers is not None:
        message["headers"] = headers
    if examples:
        message["examples"] = [
            {"name": ex_name, "summary": ex_summary, "payload": ex_payload}
            for ex_name, ex_summary, ex_payload in examples
        ]
    return message


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)}


EVENT_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "Kafka headers of every event a worker writes (README.md#trusted-events).",
    "properties": {
        "pipeline-mac": {
            "type": "string",
            "pattern": "^[0-9a-f]{64}$",
            "description": "HMAC-SHA256, with the workers' event key, over `pipeline-events/v1`, "
            "a zero byte, the record key, a zero byte and the record value, hex. The registry "
            "rebuild and the clients that hold the key ignore events without a valid one.",
        }
    },
    "required": ["pipeline-mac"],
}

SECURITY_SCHEMES: dict[str, Any] = {
    "scramSha512": {
        "type": "scramSha512",
        "description": "SASL SCRAM-SHA-512 over TLS (SASL_SSL), one user per role (worker, "
        "client, generator).",
    },
}


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document for the worker's topics."""
    settings = _default_settings()
    specs = {spec.name: spec for spec in topic_specs(settings)}
    env_of = {
        str(value): f"PIPELINE_{field.upper()}"
        for field, value in settings.model_dump().items()
        if field.endswith("_topic")
    }
    commands_topic, events_topic = settings.commands_topic, settings.events_topic
    stream_topic, batch_topic, dlq_topic = (
        settings.stream_topic,
        settings.batch_topic,
        settings.dlq_topic,
    )
    alerts_topic = settings.fraud_alerts_topic

    messages: dict[str, Any] = {}
    channel_messages: dict[str, dict[str, Any]] = {name: {} for name in specs}

    command_key = "`command_id`: the idempotency key chosen by the client."
    command_examples = _command_examples()
    for ctype, model in command_wire_models().items():
        messages[model.__name__] = _message(
            ctype.value,
            f"{ctype.value} command",
            _COMMAND_DOCS[ctype],
            _ref("components", "schemas", model.__name__),
            _key_schema(specs[commands_topic], model, command_key),
            command_examples.get(ctype, []),
        )
        channel_messages[commands_topic][ctype.value] = _ref(
            "components", "messages", model.__name__
        )

    subject_key = (
        "`subject`: `batch/<batch_id>`, `backfill/<backfill_id>`, `stream/<name>`, "
        "`quality/<layer>/<expectation>`, `schedule/<schedule_id>`, `worker/<worker_id>` "
        "or `command/<command_id>`; "
        "the topic is compacted on it."
    )
    event_examples = _event_examples()
    for etype, model in event_wire_models().items():
        messages[model.__name__] = _message(
            etype.value,
            f"{etype.value} event",
            _EVENT_DOCS[etype],
            _ref("components", "schemas", model.__name__),
            _key_schema(specs[events_topic], Event, subject_key),
            event_examples.get(etype, []),
            headers=EVENT_HEADERS,
        )
        channel_messages[events_topic][etype.value] = _ref("components", "messages", model.__name__)

    messages["TransactionEvent"] = _message(
        "transaction",
        "TransactionEvent",
        "One retail/e-commerce transaction line (31 fields).",
        _ref("components", "schemas", "TransactionEvent"),
        _key_schema(specs[stream_topic], TransactionEvent, "`transaction_id`."),
        [("sample", "A typical record, as produced to Kafka", _transaction_example())],
    )
    for topic in (stream_topic, batch_topic):
        channel_messages[topic]["transaction"] = _ref("components", "messages", "TransactionEvent")

    messages["DeadLetter"] = _message(
        "dead_letter",
        "Dead letter",
        "A record the stream could not accept, as it arrived.",
        {
            "type": "string",
            "format": "binary",
            "description": "The original record value, byte for byte.",
        },
        _key_schema(specs[dlq_topic], None, "The original record's key, unchanged."),
        [
            (
                "malformed_transaction",
                "A transaction with a negative quantity",
                '{"transaction_id": "t-000981", "quantity": -3}',
            )
        ],
        content_type="application/octet-stream",
        headers={
            "type": "object",
            "description": "Kafka headers naming the error and where the record came from.",
            "additionalProperties": {"type": "string"},
        },
    )
    channel_messages[dlq_topic]["dead_letter"] = _ref("components", "messages", "DeadLetter")

    messages["FraudAlert"] = _message(
        "fraud_alert",
        "FraudAlert",
        fraud_examples.ALERT_SUMMARY,
        _ref("components", "schemas", "FraudAlert"),
        _key_schema(specs[alerts_topic], FraudAlert, fraud_examples.ALERT_KEY),
        fraud_examples.fraud_alert_examples(),
        headers=fraud_examples.ALERT_HEADERS,
    )
    channel_messages[alerts_topic]["fraud_alert"] = _ref("components", "messages", "FraudAlert")

    channels: dict[str, Any] = {}
    for name, spec in specs.items():
        channels[name] = {
            "address": name,
            "title": name,
            "description": (
                f"{spec.description} Key: {spec.key}. "
                f"Topic name set by `{env_of[name]}` (default `{name}`)."
            ),
            "messages": channel_messages[name],
            "bindings": _channel_bindings(spec),
        }

    def op(
        action: str,
        topic: str,
        who: str,
        summary: str,
        names: Iterable[str] | None = None,
        reply: Iterable[str] = (),
    ) -> dict[str, Any]:
        chosen = list(channel_messages[topic]) if names is None else list(names)
        operation: dict[str, Any] = {
            "action": action,
            "channel": _ref("channels", topic),
            "summary": summary,
            "tags": [{"name": who}],
            "messages": [_ref("channels", topic, "messages", m) for m in chosen],
        }
        if reply:
            operation["reply"] = {
                "channel": _ref("channels", events_topic),
                "messages": [_ref("channels", events_topic, "messages", m) for m in reply],
            }
        return operation

    answers = (EventType.COMMAND_ACCEPTED.value, EventType.COMMAND_REJECTED.value)
    operations = {
        "worker.receiveCommands": op(
            "receive", commands_topic, "worker", "The worker executes commands.", reply=answers
        ),
        "worker.sendEvents": op(
            "send", events_topic, "worker", "The worker publishes lifecycle events and results."
        ),
        "worker.receiveTransactions": op(
            "receive", stream_topic, "worker", "The streaming ingest reads live transactions."
        ),
        "worker.readBatchTransactions": op(
            "receive",
            batch_topic,
            "worker",
            "A run_batch command with a Kafka source reads a bounded range of history.",
        ),
        "worker.sendDeadLetters": op(
            "send", dlq_topic, "worker", "The stream forwards records it cannot accept."
        ),
        "worker.sendFraudAlerts": op(
            "send", alerts_topic, "worker",
            "The fraud scorer alerts on transactions that reach HIGH or CRITICAL."
        ),
        "client.receiveFraudAlerts": op(
            "receive", alerts_topic, "client",
            "`pipeline fraud alerts` (or any consumer) reads the alerts."
        ),
        "client.sendCommands": op(
            "send",
            commands_topic,
            "client",
            "Clients (the `pipeline` CLI or any Kafka client) send commands.",
            reply=answers,
        ),
        "client.receiveEvents": op(
            "receive", events_topic, "client", "Clients follow events and read result pointers."
        ),
        "generator.sendTransactions": op(
            "send", stream_topic, "generator", "`pipeline generate` produces live transactions."
        ),
        "seeder.sendTransactions": op(
            "send", batch_topic, "seeder", "`pipeline seed --kafka-topic` produces history."
        ),
    }

    return {
        "asyncapi": "3.0.0",
        "id": "urn:kafka-pipeline-worker",
        "info": {
            "title": "Kafka pipeline worker",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": (
                "A long-lived Spark driver controlled over Kafka: it takes commands on "
                f"`{commands_topic}`, streams `{stream_topic}` into Delta, runs batch analyses "
                f"on demand and publishes lifecycle events and result pointers on "
                f"`{events_topic}`. Every message carries `schema_version` "
                f"({SCHEMA_VERSION}); unknown fields are ignored. {GENERATED_NOTE}"
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": settings.kafka_bootstrap,
                "protocol": "kafka",
                "description": "The local single-node broker (`pipeline broker start`), or "
                "docker compose's broker from the host.",
            },
            "compose": {
                "host": "kafka:29092",
                "protocol": "kafka",
                "description": "docker compose's broker, from inside the compose network.",
            },
            "secure": {
                "host": settings.kafka_bootstrap,
                "protocol": "kafka-secure",
                "description": "A broker with security on (README.md#security): SASL_SSL, TLS "
                "verified against the broker's CA, a SCRAM-SHA-512 user per role, ACLs with "
                "least privilege.",
                "security": [_ref("components", "securitySchemes", "scramSha512")],
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": component_schemas(),
            "messages": messages,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


# ---- rendering ------------------------------------------------------------------------

_ASYNCAPI_ORDER = (
    "asyncapi",
    "id",
    "info",
    "defaultContentType",
    "servers",
    "channels",
    "operations",
    "components",
)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


class _Dumper(yaml.SafeDumper):
    """Never emits anchors/aliases: the document must read the same in any YAML tool."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _json_text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _yaml_text(doc: dict[str, Any]) -> str:
    # The top level reads in AsyncAPI's usual order; everything below is sorted.
    ordered = {key: _sorted(doc[key]) for key in _ASYNCAPI_ORDER if key in doc}
    body = yaml.dump(
        ordered,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        indent=2,
        default_flow_style=False,
    )
    return f"# {GENERATED_NOTE} Do not edit.\n{body}"


def render_schemas() -> dict[str, str]:
    """Relative file name -> exact file text of every published schema, deterministic."""
    files = {rel: _json_text(doc) for rel, doc in json_schema_documents().items()}
    files[ASYNCAPI_FILE] = _yaml_text(asyncapi_document())
    return dict(sorted(files.items()))


def _generated_files(out_dir: Path) -> set[str]:
    """Files under `out_dir` that look like ours (to find stale ones), as relative names."""
    found = {p for p in out_dir.rglob("*.schema.json") if p.is_file()}
    found |= {p for p in out_dir.glob("asyncapi.*") if p.is_file()}
    return {p.relative_to(out_dir).as_posix() for p in found}


def export_schemas(out_dir: Path) -> list[Path]:
    """Write every schema under `out_dir`, remove stale generated ones; return written paths."""
    rendered = render_schemas()
    out_dir = Path(out_dir)
    if out_dir.is_dir():
        for stale in sorted(_generated_files(out_dir) - rendered.keys()):
            (out_dir / stale).unlink()
    written = []
    for rel, text in rendered.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def drifted_files(out_dir: Path) -> list[str]:
    """Relative names of files under `out_dir` that are missing, different or stale."""
    rendered = render_schemas()
    out_dir = Path(out_dir)
    drift = [
        rel
        for rel, text in rendered.items()
        if not (out_dir / rel).is_file() or (out_dir / rel).read_text(encoding="utf-8") != text
    ]
    if out_dir.is_dir():
        drift += sorted(_generated_files(out_dir) - rendered.keys())
    return sorted(drift)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.schema_export",
        description="Export the JSON Schemas and the AsyncAPI document of the contracts.",
    )
    parser.add_argument("--out", type=Path, default=Path("schemas"), help="default: ./schemas")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the files under --out have drifted"
    )
    args = parser.parse_args(argv)
    if args.check:
        drift = drifted_files(args.out)
        if drift:
            print(f"schemas under {args.out} are out of date; run `make schemas`:", file=sys.stderr)
            for rel in drift:
                print(f"  {rel}", file=sys.stderr)
            return 1
        print(f"schemas under {args.out} are up to date")
        return 0
    for path in export_schemas(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
