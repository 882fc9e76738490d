"""Error codes of the command/event contract and the one exception every decode failure becomes."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Codes carried by `command.rejected` and `batch|backfill|stream.failed`."""

    INVALID_REQUEST = "INVALID_REQUEST"
    UNKNOWN_COMMAND = "UNKNOWN_COMMAND"
    UNSUPPORTED_SCHEMA_VERSION = "UNSUPPORTED_SCHEMA_VERSION"
    BATCH_NOT_FOUND = "BATCH_NOT_FOUND"
    BATCH_ALREADY_EXISTS = "BATCH_ALREADY_EXISTS"
    BATCH_NOT_CANCELLABLE = "BATCH_NOT_CANCELLABLE"
    BACKFILL_NOT_FOUND = "BACKFILL_NOT_FOUND"
    BACKFILL_ALREADY_EXISTS = "BACKFILL_ALREADY_EXISTS"
    BACKFILL_NOT_CANCELLABLE = "BACKFILL_NOT_CANCELLABLE"
    SCHEDULE_NOT_FOUND = "SCHEDULE_NOT_FOUND"
    SCHEDULE_ALREADY_EXISTS = "SCHEDULE_ALREADY_EXISTS"
    STREAM_ALREADY_RUNNING = "STREAM_ALREADY_RUNNING"
    STREAM_NOT_RUNNING = "STREAM_NOT_RUNNING"
    CAPACITY_EXCEEDED = "CAPACITY_EXCEEDED"
    UNAUTHORIZED = "UNAUTHORIZED"
    SOURCE_ERROR = "SOURCE_ERROR"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    ATTEMPTS_EXHAUSTED = "ATTEMPTS_EXHAUSTED"
    EXPECTATION_FAILED = "EXPECTATION_FAILED"  # a `fail` expectation stopped the stream
    INVALID_EXPECTATIONS = "INVALID_EXPECTATIONS"  # the expectations file is not valid
    MODEL_TRAINING_FAILED = "MODEL_TRAINING_FAILED"  # too few rows, or a single class
    INTERNAL_ERROR = "INTERNAL_ERROR"


class ContractError(ValueError):
    """Bytes that do not decode into a valid contract message.

    `command_id` is whatever could be recovered from the bytes (None if nothing), so the
    worker can still answer the sender with `command.rejected`.
    """

    def __init__(self, code: ErrorCode, message: str, *, command_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.command_id = command_id

    def __repr__(self) -> str:
        return f"ContractError({self.code.value}, {self.message!r})"
