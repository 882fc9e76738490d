"""Kafka value bytes -> typed TransactionEvent columns plus the reason a record is invalid.

Every check is derived from the contract's field rules (`contracts.spark_schema`), so the
stream accepts exactly what the pydantic model accepts, with the same closed value sets
and bounds. All fields are first read as JSON text and then cast with `try_cast`, which
tells "wrong type" apart from "missing" and never fails the batch under ANSI mode.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING

from contracts.spark_schema import FIELD_RULES, FieldRule

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

REASON = "_reason"
_INT_TEXT = r"^-?[0-9]+$"
_JSON_SPACE = " \t\r\n"
_NUMBER_TEXT = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"


def _text_schema() -> str:
    return ", ".join(f"`{r.name}` STRING" for r in FIELD_RULES)


def _typed(rule: FieldRule, text: Column) -> Column:
    from pyspark.sql import functions as F

    if rule.spark_type == "string":
        return text
    if rule.spark_type == "integer":
        return F.when(text.rlike(_INT_TEXT), text.try_cast("int"))
    if rule.spark_type == "double":
        return F.when(text.rlike(_NUMBER_TEXT), text.try_cast("double"))
    if rule.spark_type == "boolean":
        return F.when(F.lower(text).isin("true", "false"), F.lower(text) == "true")
    if rule.spark_type == "timestamp":
        # Spark's own ISO-8601 reader: 'T' or space, optional fraction, optional Z/offset
        # (no offset means UTC, the session time zone).
        return F.trim(text).try_cast("timestamp")
    raise ValueError(f"no cast for {rule.spark_type}")


def _problem(rule: FieldRule, text: Column, value: Column) -> list[Column]:
    """Conditions (in order) that make this field invalid, each with its message."""
    from pyspark.sql import functions as F

    name = rule.name
    checks: list[Column] = []
    if rule.required:
        checks.append(F.when(text.isNull(), F.lit(f"missing required field '{name}'")))
    checks.append(
        F.when(text.isNotNull() & value.isNull(),
               F.concat(F.lit(f"'{name}' is not a valid {rule.spark_type}: "),
                        F.substring(text, 1, 60)))
    )
    if rule.min_length:
        checks.append(F.when(F.length(value) < rule.min_length, F.lit(f"'{name}' is empty")))
    if rule.allowed:
        checks.append(
            F.when(value.isNotNull() & ~value.isin(*rule.allowed),
                   F.concat(F.lit(f"'{name}' has unknown value "), F.substring(value, 1, 60)))
        )
    if rule.pattern:
        checks.append(
            F.when(value.isNotNull() & ~value.rlike(rule.pattern),
                   F.lit(f"'{name}' does not match {rule.pattern}"))
        )
    if rule.ge is not None:
        checks.append(F.when(value < rule.ge, F.lit(f"'{name}' must be >= {rule.ge:g}")))
    if rule.le is not None:
        checks.append(F.when(value > rule.le, F.lit(f"'{name}' must be <= {rule.le:g}")))
    return checks


def parse_transactions(df: DataFrame, value_col: str = "value") -> DataFrame:
    """Add the 31 typed contract columns and `_reason` (null when the record is valid).

    Keeps the input's other columns (topic, partition, offset, key, ...) for quarantine.
    """
    exprs = _expressions(value_col)
    return (df.withColumn("_json", exprs.json).select("*", *exprs.typed)
            .withColumn(REASON, exprs.reason).drop("_json"))


@dataclass(frozen=True)
class _ParseExpressions:
    json: Column
    typed: list[Column]
    reason: Column


# Building the ~300 column expressions costs hundreds of Py4J calls, 0.6-0.9 s warm on two
# cores: more than a steady micro-batch's whole parse. They are unresolved expressions, so
# one set serves every DataFrame of the same SparkContext.
_BUILT: dict[tuple[str, str], _ParseExpressions] = {}


def _expressions(value_col: str) -> _ParseExpressions:
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    key = (value_col, context.applicationId if context is not None else "")
    if key not in _BUILT:
        _BUILT.clear()  # a new SparkContext's expressions replace the old one's
        _BUILT[key] = _build_expressions(value_col)
    return _BUILT[key]


def _build_expressions(value_col: str) -> _ParseExpressions:
    from pyspark.sql import functions as F

    text = F.col(value_col).cast("string")
    json = F.from_json(text, _text_schema())
    typed = [_typed(r, F.col("_json")[r.name]).alias(r.name) for r in FIELD_RULES]

    problems: list[Column] = []
    for rule in FIELD_RULES:
        problems.extend(_problem(rule, F.col("_json")[rule.name], F.col(rule.name)))
    # json_object_keys is null exactly when the text is not a JSON object, but it parses the
    # text a second time. Only a value whose fields all came out null can be a non-object
    # that from_json let through, so the cheap tests go first and CASE stops at them.
    raw = F.col(value_col)
    all_null = reduce(operator.and_, (F.col("_json")[r.name].isNull() for r in FIELD_RULES))
    not_object = (
        F.when(raw.isNull() | ~F.ltrim(text, F.lit(_JSON_SPACE)).startswith("{"),
               F.lit("not a JSON object"))
        .when((F.col("_json").isNull() | all_null) & F.json_object_keys(text).isNull(),
              F.lit("not a JSON object"))
    )
    return _ParseExpressions(json=json, typed=typed, reason=F.coalesce(not_object, *problems))


def contract_columns() -> list[str]:
    return [r.name for r in FIELD_RULES]
