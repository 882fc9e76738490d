"""Storage schemas derived from `TransactionEvent`, never written by hand.

Kept pure (no pyspark import): the Spark schema is produced in Spark's own JSON form,
which the worker turns into a `StructType` with `StructType.fromJson`, and the same
field list gives the Arrow schema the historical seeder writes with.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from annotated_types import Ge, Le
from pydantic.fields import FieldInfo

from contracts.transaction import TransactionEvent


@dataclass(frozen=True)
class FieldRule:
    """What the stream must check for one field, mirroring the pydantic model."""

    name: str
    spark_type: str  # string | timestamp | integer | double | boolean
    required: bool
    allowed: tuple[str, ...] | None = None
    ge: float | None = None
    le: float | None = None
    pattern: str | None = None
    min_length: int | None = None


_SPARK_TYPES: dict[type, str] = {
    str: "string",
    datetime: "timestamp",
    int: "integer",
    float: "double",
    bool: "boolean",
}


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Strip Optional/Annotated; return the base type and the collected metadata."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            for item in extra:
                # Field(...) inside Annotated carries its constraints in its own metadata.
                metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        else:
            return annotation, metadata


def _rule(name: str, info: FieldInfo) -> FieldRule:
    base, metadata = _unwrap(info.annotation)
    metadata = [*metadata, *info.metadata]
    allowed = None
    if isinstance(base, type) and issubclass(base, Enum):
        allowed = tuple(str(m.value) for m in base)
        base = str
    spark_type = _SPARK_TYPES[base]
    ge = next((float(m.ge) for m in metadata if isinstance(m, Ge)), None)
    le = next((float(m.le) for m in metadata if isinstance(m, Le)), None)
    pattern = next((m.pattern for m in metadata if getattr(m, "pattern", None)), None)
    min_length = next((m.min_length for m in metadata if getattr(m, "min_length", None)), None)
    if spark_type == "integer" and le is not None and le >= 2**31 - 1:
        le = None  # the int32 range is enforced by the type itself
    return FieldRule(name, spark_type, info.is_required(), allowed, ge, le, pattern, min_length)


FIELD_RULES: tuple[FieldRule, ...] = tuple(
    _rule(name, info) for name, info in TransactionEvent.model_fields.items()
)


def spark_schema_json(*, extra: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The TransactionEvent as Spark's StructType JSON (`StructType.fromJson` input).

    Every column is nullable in storage: validity is checked before the write, and a
    nullable column lets any engine (Spark, delta-rs) append without schema friction.
    """
    fields = [
        {"name": r.name, "type": r.spark_type, "nullable": True, "metadata": {}}
        for r in FIELD_RULES
    ]
    for name, spark_type in extra or []:
        fields.append({"name": name, "type": spark_type, "nullable": True, "metadata": {}})
    return {"type": "struct", "fields": fields}


def spark_schema_ddl() -> str:
    """The same schema as a DDL string, handy for `from_json` and docs."""
    return ", ".join(f"`{r.name}` {r.spark_type.upper()}" for r in FIELD_RULES)
