"""Storage schemas and the stream's field rules, derived from `TransactionEvent`, never
written by hand.

The storage type of each column comes from the model's Python types. What the stream
checks comes from the model's JSON Schema, the very document published in `schemas/`: the
schema is the one rule of validity, so the Spark parser is built from it, and a keyword the
parser has no check for makes this module fail at import instead of being ignored.

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

from pydantic.fields import FieldInfo

from contracts.transaction import TransactionEvent


@dataclass(frozen=True)
class FieldRule:
    """What the stream must check for one field: the field's JSON Schema, flattened."""

    name: str
    spark_type: str  # string | timestamp | integer | double | boolean
    required: bool  # present and not null; an optional field may be absent or null
    allowed: tuple[str, ...] | None = None
    ge: float | None = None
    le: float | None = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None

    @property
    def json_type(self) -> str:
        """The JSON type the value must have (timestamps are JSON strings)."""
        return _JSON_TYPES[self.spark_type]


_SPARK_TYPES: dict[type, str] = {
    str: "string",
    datetime: "timestamp",
    int: "integer",
    float: "double",
    bool: "boolean",
}
_JSON_TYPES = {
    "string": "string",
    "timestamp": "string",
    "integer": "integer",
    "double": "number",
    "boolean": "boolean",
}
# Keywords that only describe; everything else in a field's schema must become a check.
_ANNOTATIONS = {"title", "description", "default", "examples"}
_CHECKED = {"type", "enum", "minimum", "maximum", "pattern", "minLength", "maxLength"}


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated down to the base Python type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        else:
            return annotation


def _storage_type(info: FieldInfo) -> str:
    base = _unwrap(info.annotation)
    if isinstance(base, type) and issubclass(base, Enum):
        base = str
    return _SPARK_TYPES[base]


def _rule(name: str, prop: dict[str, Any], defs: dict[str, Any], required: bool,
          spark_type: str) -> FieldRule:
    body, nullable, wrapper = prop, False, {"$ref"}
    if "anyOf" in prop:
        branches = [b for b in prop["anyOf"] if b != {"type": "null"}]
        if len(branches) != 1:
            raise ValueError(f"{name}: the stream checks one type per field, not {prop}")
        body, nullable, wrapper = branches[0], True, {"anyOf", "$ref"}
    if nullable == required:
        # The stream treats "absent" and "null" alike: optional fields must allow null and
        # required ones must not.
        raise ValueError(f"{name}: required={required} but nullable={nullable}")
    if "$ref" in body:
        body = defs[body["$ref"].rsplit("/", 1)[-1]]
    rule = FieldRule(
        name,
        spark_type,
        required,
        allowed=tuple(body["enum"]) if "enum" in body else None,
        ge=float(body["minimum"]) if "minimum" in body else None,
        le=float(body["maximum"]) if "maximum" in body else None,
        pattern=body.get("pattern"),
        min_length=body.get("minLength"),
        max_length=body.get("maxLength"),
    )
    if body.get("type") != rule.json_type:
        raise ValueError(f"{name}: JSON type {body.get('type')!r} but stored as {spark_type}")
    unknown = (set(body) | set(prop) - wrapper) - _ANNOTATIONS - _CHECKED
    if unknown:
        raise ValueError(f"{name}: the stream has no check for {sorted(unknown)}")
    return rule


def _field_rules() -> tuple[FieldRule, ...]:
    schema = TransactionEvent.model_json_schema()
    required = set(schema.get("required", ()))
    defs = schema.get("$defs", {})
    return tuple(
        _rule(name, schema["properties"][name], defs, name in required, _storage_type(info))
        for name, info in TransactionEvent.model_fields.items()
    )


FIELD_RULES: tuple[FieldRule, ...] = _field_rules()


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
