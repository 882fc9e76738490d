"""A bounded Kafka range: `topic`, `start_offset`, `end_offset`, and their one set of rules.

A batch's Kafka source and a backfill both take a range in exactly these forms, so the
forms are defined and checked here once: `earliest`, `latest`, a map partition -> offset
(Spark's -2/-1 allowed, or Spark's `{"<topic>": {...}}` wrapping of it), a timestamp
(ISO-8601 or epoch milliseconds, as Kafka counts time).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contracts.timeutil import as_utc

_PARTITION_RE = re.compile(r"^[0-9]{1,10}$")  # ASCII only: str.isdigit accepts other scripts
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

OffsetSpec = Literal["earliest", "latest"] | dict[str, StrictInt] | datetime
"""`earliest`, `latest`, a map partition -> offset (Spark's -2/-1 allowed), or a timestamp."""


class KafkaRange(BaseModel):
    """The checks of a model with `topic`, `start_offset` and `end_offset` fields (each
    subclass declares them, `topic` first, so that the offsets can see it)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    if TYPE_CHECKING:  # declared by each subclass, in its own field order
        start_offset: OffsetSpec
        end_offset: OffsetSpec

    @field_validator("start_offset", "end_offset", mode="before", check_fields=False)
    @classmethod
    def _offset_shape(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict):
            if len(value) == 1 and isinstance(next(iter(value.values())), dict):
                # Spark's {"topic": {"0": 5}} form: the name must be this source's topic.
                wrapper, value = next(iter(value.items()))
                topic = info.data.get("topic")
                if topic is not None and wrapper != topic:
                    raise ValueError(f"offsets are given for topic {wrapper!r}, but the "
                                     f"source topic is {topic!r}")
            if "timestamp" in value and len(value) == 1:
                value = value["timestamp"]  # {"timestamp": ms}: epoch milliseconds below
            else:
                return _partition_offsets(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            # An epoch timestamp in milliseconds, as Kafka counts time.
            try:
                return datetime.fromtimestamp(value / 1000, tz=UTC)
            except (OverflowError, OSError, ValueError):
                raise ValueError(f"timestamp {value!r} ms is out of range") from None
        return value

    @field_validator("start_offset", "end_offset", check_fields=False)
    @classmethod
    def _utc(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            value = as_utc(value)
            if value < _EPOCH:
                # Kafka timestamps start at the epoch; Spark would get a negative one.
                raise ValueError(f"timestamp {value.isoformat()} is before 1970-01-01")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        start, end = self.start_offset, self.end_offset
        if start == "latest" and end == "earliest":
            raise ValueError("end_offset 'earliest' is before start_offset 'latest'")
        if end == "earliest":
            raise ValueError("end_offset cannot be 'earliest'")
        if isinstance(start, datetime) and isinstance(end, datetime) and end < start:
            raise ValueError("end_offset timestamp is before start_offset timestamp")
        if isinstance(start, dict) and isinstance(end, dict):
            for partition, s in start.items():
                e = end.get(partition)
                if e is not None and s >= 0 and e >= 0 and e < s:
                    raise ValueError(
                        f"end_offset {e} is before start_offset {s} on partition {partition}"
                    )
        return self


def _partition_offsets(value: dict[Any, Any]) -> dict[str, int]:
    """A partition -> offset map, keys normalised ("007" -> "7") as Spark expects them."""
    out: dict[str, int] = {}
    for partition, offset in value.items():
        if not isinstance(partition, str) or not _PARTITION_RE.fullmatch(partition):
            raise ValueError(f"partition {partition!r} is not a partition number")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < -2:
            raise ValueError(f"offset for partition {partition} must be an integer >= -2")
        key = str(int(partition))
        if key in out:
            raise ValueError(f"partition {key} is given twice")
        out[key] = offset
    return out
