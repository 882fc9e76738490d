"""Command envelope (`pipeline-commands`): one frozen model per command type.

`decode_command` turns any bytes into a valid `Command` or raises one `ContractError`
whose code the worker publishes in `command.rejected`. Every field that reaches a file
path, a Spark option or a topic name is allow-listed here, so clients fail early too.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from contracts.cron import CronError, parse_cron
from contracts.errors import ContractError, ErrorCode
from contracts.offsets import KafkaRange, OffsetSpec
from contracts.schedules import (
    MAX_INTERVAL_SECONDS,
    MAX_SCHEDULE_ID_LENGTH,
    MIN_INTERVAL_SECONDS,
    SCHEDULE_ID_PATTERN,
)
from contracts.transaction import (
    CardNetwork,
    Category,
    Channel,
    CustomerTier,
    DeviceType,
    PaymentMethod,
    Region,
    TransactionStatus,
)

SCHEMA_VERSION = 1
BATCH_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MAX_COMMAND_ID_LENGTH = 128
# Kafka's own rule for topic names: [A-Za-z0-9._-]{1,249}, but not "." or "..". Written
# without look-arounds so that any JSON Schema validator can use it: a name with a
# character other than "." or a name of 3+ dots. No "," either, so that a topic never
# turns into a list in Spark's `subscribe` option, and no "/" so that it stays one path
# segment where it names a checkpoint.
TOPIC_PATTERN = r"^(?:[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*|\.{3,})$"
MAX_TOPIC_LENGTH = 249
_TOPIC_RE = re.compile(TOPIC_PATTERN)


class CommandType(StrEnum):
    PING = "ping"
    START_STREAM = "start_stream"
    STOP_STREAM = "stop_stream"
    RUN_BATCH = "run_batch"
    CANCEL_BATCH = "cancel_batch"
    SHUTDOWN = "shutdown"
    BACKFILL = "backfill"
    CANCEL_BACKFILL = "cancel_backfill"
    SCHEDULE_BATCH = "schedule_batch"
    UNSCHEDULE_BATCH = "unschedule_batch"


class AnalysisType(StrEnum):
    REVENUE_BY_CATEGORY = "revenue_by_category"
    REVENUE_BY_REGION = "revenue_by_region"
    PAYMENT_ANALYSIS = "payment_analysis"
    CUSTOMER_SEGMENTATION = "customer_segmentation"
    FRAUD_ANALYSIS = "fraud_analysis"
    HOURLY_TRENDS = "hourly_trends"
    CHANNEL_PERFORMANCE = "channel_performance"
    INVENTORY_VELOCITY = "inventory_velocity"
    FULL_REPORT = "full_report"
    # Not a report: trains the stream's fraud model (README.md#training-the-fraud-model).
    TRAIN_FRAUD_MODEL = "train_fraud_model"


# Columns a batch may filter on, with the closed value set where the contract has one.
FILTER_COLUMNS: dict[str, type[StrEnum] | None] = {
    "category": Category,
    "sub_category": None,
    "brand": None,
    "region": Region,
    "city": None,
    "state": None,
    "channel": Channel,
    "payment_method": PaymentMethod,
    "card_network": CardNetwork,
    "customer_tier": CustomerTier,
    "transaction_status": TransactionStatus,
    "device_type": DeviceType,
    "currency": None,
    "store_id": None,
    "product_id": None,
    "customer_id": None,
    "is_fraudulent": None,
}

BatchId = Annotated[str, Field(pattern=BATCH_ID_PATTERN)]
BackfillId = BatchId  # the same rule: it names a directory and a Kafka key


def is_valid_topic_name(name: object) -> bool:
    """Kafka's topic-name rule (see TOPIC_PATTERN), for checks outside the models."""
    return (isinstance(name, str) and 0 < len(name) <= MAX_TOPIC_LENGTH
            and _TOPIC_RE.fullmatch(name) is not None)


def _topic_name(name: str) -> str:
    if not is_valid_topic_name(name):
        raise ValueError(f"{name[:60]!r} is not a Kafka topic name: use 1-{MAX_TOPIC_LENGTH} "
                         "of A-Z a-z 0-9 . _ - (one topic, not '.' or '..')")
    return name


# The pattern goes into the JSON Schema; the validator gives the readable message.
TopicName = Annotated[str, Field(min_length=1, max_length=MAX_TOPIC_LENGTH,
                                 json_schema_extra={"pattern": TOPIC_PATTERN}),
                      AfterValidator(_topic_name)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


# ---- payloads -------------------------------------------------------------------------


class PingPayload(_Frozen):
    pass


class StartStreamPayload(_Frozen):
    topic: TopicName | None = None
    starting_offsets: Literal["latest", "earliest"] = "latest"
    trigger_seconds: Annotated[float, Field(gt=0, le=3600)] | None = None


class StopStreamPayload(_Frozen):
    pass


class KafkaSource(KafkaRange):
    kind: Literal["kafka"]
    topic: TopicName
    start_offset: OffsetSpec = "earliest"
    end_offset: OffsetSpec = "latest"


class DeltaSource(_Frozen):
    kind: Literal["delta"]
    start_date: date
    end_date: date

    @model_validator(mode="after")
    def _ordered(self) -> DeltaSource:
        if self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self


BatchSource = Annotated[KafkaSource | DeltaSource, Field(discriminator="kind")]
FilterValue = str | StrictBool | StrictInt | float
FilterSpec = FilterValue | list[FilterValue]


# train_fraud_model without a source trains on silver's last TRAINING_DAYS days (UTC).
TRAINING_DAYS = 7


class RunBatchPayload(_Frozen):
    batch_id: BatchId | None = None
    analysis_type: AnalysisType
    source: BatchSource | None = Field(
        default=None, description="Required, except for train_fraud_model, which defaults "
        "to silver over the last 7 days (UTC, today included) and takes a Delta source only.")
    filters: dict[str, FilterSpec] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _default_training_source(cls, data: Any) -> Any:
        # Resolved once, when the command is decoded: the batch record then names the
        # dates it trained on, and a re-run after a restart uses the same ones.
        if isinstance(data, dict) and data.get("source") is None \
                and data.get("analysis_type") == AnalysisType.TRAIN_FRAUD_MODEL.value:
            today = datetime.now(UTC).date()
            data = {**data, "source": {
                "kind": "delta", "start_date": (today - timedelta(days=TRAINING_DAYS - 1)),
                "end_date": today}}
        return data

    @model_validator(mode="after")
    def _source_rules(self) -> RunBatchPayload:
        if self.source is None:
            raise ValueError(f"source is required for analysis_type {self.analysis_type.value}")
        if self.analysis_type is AnalysisType.TRAIN_FRAUD_MODEL:
            if not isinstance(self.source, DeltaSource):
                raise ValueError("train_fraud_model trains on silver: give a delta source "
                                 "(or none, for the last 7 days), not a Kafka range")
            if self.filters:
                raise ValueError("train_fraud_model takes no filters")
        return self

    @field_validator("filters")
    @classmethod
    def _whitelisted(cls, filters: dict[str, Any]) -> dict[str, Any]:
        for column, spec in filters.items():
            if column not in FILTER_COLUMNS:
                allowed = ", ".join(sorted(FILTER_COLUMNS))
                raise ValueError(f"cannot filter on {column!r}; allowed columns: {allowed}")
            values = spec if isinstance(spec, list) else [spec]
            if not values:
                raise ValueError(f"filter {column!r} has an empty list of values")
            enum = FILTER_COLUMNS[column]
            if enum is not None:
                known = {m.value for m in enum}
                bad = [v for v in values if v not in known]
                if bad:
                    raise ValueError(
                        f"filter {column!r}: unknown value(s) {bad}; expected one of "
                        f"{sorted(known)}"
                    )
            if column == "is_fraudulent" and any(not isinstance(v, bool) for v in values):
                raise ValueError("filter 'is_fraudulent' takes true or false")
        return filters


class CancelBatchPayload(_Frozen):
    batch_id: BatchId


class ShutdownPayload(_Frozen):
    drain_timeout_seconds: Annotated[float, Field(ge=0, le=86_400)] | None = None


class BackfillPayload(KafkaRange):
    """Replay a bounded range of a topic through every layer; the offsets take exactly
    the forms of a batch's Kafka source."""

    backfill_id: BackfillId | None = None
    topic: TopicName
    start_offset: OffsetSpec = "earliest"
    end_offset: OffsetSpec = "latest"


class CancelBackfillPayload(_Frozen):
    backfill_id: BackfillId


# ---- schedules --------------------------------------------------------------------------


ScheduleId = Annotated[str, Field(min_length=1, max_length=MAX_SCHEDULE_ID_LENGTH,
                                  pattern=SCHEDULE_ID_PATTERN)]


def _cron_expression(text: str) -> str:
    try:
        return parse_cron(text).text
    except CronError as exc:
        raise ValueError(f"invalid cron expression: {exc}") from None


def _whole_second_utc(value: datetime) -> datetime:
    # Slots are named to the second (the batch id), so the anchor is too.
    return value.astimezone(UTC).replace(microsecond=0)


class BatchTemplate(RunBatchPayload):
    """A run_batch payload without `batch_id`: each slot's batch is named
    `<schedule_id>-<YYYYMMDDTHHMMSSZ>` by the worker."""

    batch_id: SkipJsonSchema[None] = None

    @model_validator(mode="before")
    @classmethod
    def _no_batch_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("batch_id") is not None:
            raise ValueError("a schedule names its batches itself (<schedule_id>-<slot>); "
                             "leave batch_id out of the batch template")
        return data


class ScheduleBatchPayload(_Frozen):
    """Run a batch on every slot: every `interval_seconds` or on a cron expression (UTC)."""

    schedule_id: ScheduleId
    interval_seconds: Annotated[StrictInt, Field(ge=MIN_INTERVAL_SECONDS,
                                                 le=MAX_INTERVAL_SECONDS)] | None = None
    cron: Annotated[str, Field(min_length=1, max_length=200),
                    AfterValidator(_cron_expression)] | None = None
    batch: BatchTemplate
    # Interval slots are start_at + k * interval (default anchor: the Unix epoch); with
    # either cadence, no slot before start_at (default: when the command is accepted).
    start_at: Annotated[AwareDatetime, AfterValidator(_whole_second_utc)] | None = None

    @model_validator(mode="after")
    def _one_cadence(self) -> ScheduleBatchPayload:
        if (self.interval_seconds is None) == (self.cron is None):
            raise ValueError("give exactly one of interval_seconds and cron")
        return self


class UnscheduleBatchPayload(_Frozen):
    schedule_id: ScheduleId


# ---- envelopes ------------------------------------------------------------------------


class _CommandBase(_Frozen):
    schema_version: Literal[1] = SCHEMA_VERSION
    command_id: Annotated[str, Field(min_length=1, max_length=MAX_COMMAND_ID_LENGTH)]
    issued_at: datetime
    issued_by: Annotated[str, Field(max_length=256)] | None = None

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


class PingCommand(_CommandBase):
    type: Literal["ping"] = "ping"
    payload: PingPayload = PingPayload()


class StartStreamCommand(_CommandBase):
    type: Literal["start_stream"] = "start_stream"
    payload: StartStreamPayload = StartStreamPayload()


class StopStreamCommand(_CommandBase):
    type: Literal["stop_stream"] = "stop_stream"
    payload: StopStreamPayload = StopStreamPayload()


class RunBatchCommand(_CommandBase):
    type: Literal["run_batch"] = "run_batch"
    payload: RunBatchPayload


class CancelBatchCommand(_CommandBase):
    type: Literal["cancel_batch"] = "cancel_batch"
    payload: CancelBatchPayload


class ShutdownCommand(_CommandBase):
    type: Literal["shutdown"] = "shutdown"
    payload: ShutdownPayload = ShutdownPayload()


class BackfillCommand(_CommandBase):
    type: Literal["backfill"] = "backfill"
    payload: BackfillPayload


class CancelBackfillCommand(_CommandBase):
    type: Literal["cancel_backfill"] = "cancel_backfill"
    payload: CancelBackfillPayload


class ScheduleBatchCommand(_CommandBase):
    type: Literal["schedule_batch"] = "schedule_batch"
    payload: ScheduleBatchPayload


class UnscheduleBatchCommand(_CommandBase):
    type: Literal["unschedule_batch"] = "unschedule_batch"
    payload: UnscheduleBatchPayload


Command = Annotated[
    PingCommand
    | StartStreamCommand
    | StopStreamCommand
    | RunBatchCommand
    | CancelBatchCommand
    | ShutdownCommand
    | BackfillCommand
    | CancelBackfillCommand
    | ScheduleBatchCommand
    | UnscheduleBatchCommand,
    Field(discriminator="type"),
]
COMMAND_MODELS: dict[CommandType, type[_CommandBase]] = {
    CommandType.PING: PingCommand,
    CommandType.START_STREAM: StartStreamCommand,
    CommandType.STOP_STREAM: StopStreamCommand,
    CommandType.RUN_BATCH: RunBatchCommand,
    CommandType.CANCEL_BATCH: CancelBatchCommand,
    CommandType.SHUTDOWN: ShutdownCommand,
    CommandType.BACKFILL: BackfillCommand,
    CommandType.CANCEL_BACKFILL: CancelBackfillCommand,
    CommandType.SCHEDULE_BATCH: ScheduleBatchCommand,
    CommandType.UNSCHEDULE_BATCH: UnscheduleBatchCommand,
}
_COMMAND_ADAPTER: TypeAdapter[Any] = TypeAdapter(Command)
_ID_IN_TEXT = re.compile(rb'"command_id"\s*:\s*"([^"\\]{1,128})"')


def new_command(
    command_type: CommandType | str,
    payload: dict[str, Any] | None = None,
    *,
    command_id: str | None = None,
    issued_by: str | None = None,
) -> _CommandBase:
    """Build a valid command (clients and tests); raises ContractError when invalid."""
    import uuid

    raw = {
        "schema_version": SCHEMA_VERSION,
        "command_id": command_id or str(uuid.uuid4()),
        "type": str(command_type),
        "issued_at": datetime.now(UTC).isoformat(),
        "issued_by": issued_by,
        "payload": payload or {},
    }
    return decode_command(orjson.dumps({k: v for k, v in raw.items() if v is not None}))


def decode_command(raw: bytes | None, *, max_bytes: int = 65_536) -> Any:
    """Bytes -> a valid command model, or `ContractError` with the code to answer with."""
    if raw is None:
        raise ContractError(ErrorCode.INVALID_REQUEST, "empty message (null value)")
    if len(raw) > max_bytes:
        match = _ID_IN_TEXT.search(raw[:4096])
        raise ContractError(
            ErrorCode.INVALID_REQUEST,
            f"command is {len(raw)} bytes; the limit is {max_bytes}",
            command_id=match.group(1).decode("utf-8", "replace") if match else None,
        )
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        match = _ID_IN_TEXT.search(raw)
        raise ContractError(
            ErrorCode.INVALID_REQUEST,
            f"not valid JSON: {exc}",
            command_id=match.group(1).decode("utf-8", "replace") if match else None,
        ) from None
    if not isinstance(obj, dict):
        raise ContractError(
            ErrorCode.INVALID_REQUEST, f"a command is a JSON object, got {type(obj).__name__}"
        )
    cid = obj.get("command_id")
    command_id = cid if isinstance(cid, str) and 0 < len(cid) <= MAX_COMMAND_ID_LENGTH else None

    version = obj.get("schema_version")
    if version is None:
        raise ContractError(
            ErrorCode.INVALID_REQUEST, "schema_version is required", command_id=command_id
        )
    if isinstance(version, bool) or not isinstance(version, int):
        raise ContractError(
            ErrorCode.INVALID_REQUEST,
            f"schema_version must be an integer, got {version!r}",
            command_id=command_id,
        )
    if version != SCHEMA_VERSION:
        raise ContractError(
            ErrorCode.UNSUPPORTED_SCHEMA_VERSION,
            f"schema_version {version} is not supported; this worker speaks {SCHEMA_VERSION}",
            command_id=command_id,
        )
    ctype = obj.get("type")
    if not isinstance(ctype, str):
        raise ContractError(
            ErrorCode.INVALID_REQUEST,
            "type is required and must be a string",
            command_id=command_id,
        )
    if ctype not in CommandType.__members__.values():
        known = ", ".join(t.value for t in CommandType)
        raise ContractError(
            ErrorCode.UNKNOWN_COMMAND,
            f"unknown command type {ctype!r}; known types: {known}",
            command_id=command_id,
        )
    try:
        return _COMMAND_ADAPTER.validate_python(obj)
    except ValidationError as exc:
        raise ContractError(
            ErrorCode.INVALID_REQUEST, validation_message(exc), command_id=command_id
        ) from None
    except Exception as exc:
        # A validator that raised something pydantic does not wrap: still a bad request,
        # never an exception that would stop the worker's command loop.
        raise ContractError(
            ErrorCode.INVALID_REQUEST, f"invalid payload: {exc}", command_id=command_id
        ) from None


def validation_message(exc: ValidationError) -> str:
    """A one-line, user-facing summary of pydantic errors."""
    parts = []
    for err in exc.errors()[:5]:
        # Drop the discriminator tags pydantic puts in the path (e.g. 'run_batch', 'kafka').
        loc = ".".join(str(p) for p in err["loc"] if str(p) not in _TAGS) or "<root>"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


_TAGS = {t.value for t in CommandType} | {"kafka", "delta"}
