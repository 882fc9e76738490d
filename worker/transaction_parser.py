"""Kafka value bytes -> typed TransactionEvent columns plus the reason a record is invalid.

The published JSON Schema decides what is valid, and every check here is derived from it
(`contracts.spark_schema.FIELD_RULES`), so the stream, the pydantic model and any JSON
Schema validator give the same verdict on every record.

That needs each field's JSON type, which `from_json` hides: a STRING field takes any token
as text, so `"customer_id": 42` and `"customer_id": "42"` look alike. So the value is
read twice, in one pass over the rows:

- `try_parse_json` (VARIANT) of `[value]` says whether the bytes are exactly one JSON
  object, and `schema_of_variant` gives each field's JSON type (STRING, BIGINT,
  DECIMAL(p,s), DOUBLE, BOOLEAN, VOID for null, OBJECT<...>, ARRAY<...>);
- `from_json` with every field as STRING gives each field's text: a string's content or a
  number's literal, which is then cast. Reading the values out of the VARIANT instead
  costs an interpreted `Cast` per value, several times slower.

Duplicate keys keep the last value, as orjson (the model's decoder) does: see
`allow_duplicate_keys`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from contracts.spark_schema import FIELD_RULES, FieldRule

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

REASON = "_reason"
NOT_AN_OBJECT = "not a JSON object"
DUPLICATE_KEYS_CONF = "spark.sql.variant.allowDuplicateKeys"

_DOC = "_doc"  # VARIANT of `[value]`: an array holding exactly the record, when valid
_TEXT = "_text"  # the record's fields as JSON text (from_json, all STRING)
_FIELDS = "_fields"  # the record's fields as VARIANTs (null unless the record is an object)
_NOT_OBJECT = "_not_object"  # the value is not exactly one JSON object
_KINDS = "_kinds"  # per field: absent, of the right JSON type, or of another (one struct)
_INT32 = (-(2**31), 2**31 - 1)
# A field's JSON type, reduced to what the checks need (an int compares far cheaper than
# the type's name, which the checks would otherwise read and compare many times a row).
_ABSENT, _RIGHT_TYPE, _WRONG_TYPE = 0, 1, 2
_NUMBER_TYPES = ("BIGINT", "DOUBLE")  # and DECIMAL(p,s)
_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _number_col(rule: FieldRule) -> str:
    return f"_n_{rule.name}"


def allow_duplicate_keys(spark: SparkSession) -> None:
    """Make `try_parse_json` keep the last of duplicate keys instead of failing the record.

    orjson, and so the model and the schema check, keep the last value; Spark's default is
    to reject the whole value. The setting is read when a DataFrame is analysed, so it is
    set before building one. `worker.spark_session` sets it for the worker's session too.
    """
    spark.conf.set(DUPLICATE_KEYS_CONF, "true")


def parse_transactions(df: DataFrame, value_col: str = "value") -> DataFrame:
    """Add the 31 typed contract columns and `_reason` (null when the record is valid).

    Keeps the input's other columns (topic, partition, offset, key, ...) for quarantine.
    """
    allow_duplicate_keys(df.sparkSession)
    e = _expressions(value_col)
    # One step per dependency, each dropping what the next no longer needs. Few columns
    # per step keep the generated code fast: whole-stage code generation is off for a
    # step with more than 100 fields (nested ones included), and a step whose input
    # columns overflow a Java method's parameters is inlined into one huge method that
    # the JIT leaves at its slow tiers. Hence the 31 kinds travel as one struct.
    return (df.select("*", e.doc.alias(_DOC), e.text.alias(_TEXT))
            .select(*df.columns, _TEXT, e.fields.alias(_FIELDS),
                    e.not_object.alias(_NOT_OBJECT))
            .select(*df.columns, _TEXT, _NOT_OBJECT, e.kinds.alias(_KINDS))
            .select(*df.columns, _NOT_OBJECT, _KINDS, *e.typed)
            .select(*df.columns, *contract_columns(), e.reason.alias(REASON)))


@dataclass(frozen=True)
class _ParseExpressions:
    doc: Column
    text: Column
    fields: Column
    not_object: Column
    kinds: Column
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


# What `from_json` makes of tokens that are not strings: the text of a number, a boolean,
# an object or an array. A field whose every valid value is unlike all of them (a closed
# set of words, or a pattern none of these match) needs no JSON type: its value check
# rejects them anyway. That spares the costliest step, the VARIANT per field, for a third
# of the fields. `_typed_by_text` checks the claim for each such field.
_NOT_STRING_TEXTS = ("0", "-1", "1.5", "2e5", "2025", "true", "false", "{}", "[]",
                     '{"a":"USD"}', '["USD"]')
_JSON_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$")


def _typed_by_text(rule: FieldRule) -> bool:
    """A string field whose allowed values no non-string token's text can be."""
    if rule.json_type != "string":
        return False
    if rule.allowed:
        return not any(v in ("true", "false") or v[:1] in "{[" or _JSON_NUMBER.match(v)
                       for v in rule.allowed)
    if rule.pattern:
        if any(re.search(rule.pattern, t) for t in _NOT_STRING_TEXTS):
            raise ValueError(f"{rule.name}: pattern matches a non-string token's text")
        return True
    return False


def _kind(rule: FieldRule, fields: Column, text: Column) -> Column:
    """Absent (or null), of the JSON type the field's schema asks for, or of another."""
    from pyspark.sql import functions as F

    if _typed_by_text(rule):
        return F.when(text.isNull(), F.lit(_ABSENT)).otherwise(F.lit(_RIGHT_TYPE))
    json_type = F.schema_of_variant(fields[rule.name])  # one expression: computed once
    if rule.json_type == "string":
        right = json_type == "STRING"
    elif rule.json_type == "boolean":
        right = json_type == "BOOLEAN"
    else:  # integer and number: any JSON number; integral or not is checked on the value
        right = json_type.isin(*_NUMBER_TYPES) | json_type.startswith("DECIMAL")
    return (F.when(json_type.isNull() | (json_type == "VOID"), F.lit(_ABSENT))
            .when(right, F.lit(_RIGHT_TYPE)).otherwise(F.lit(_WRONG_TYPE)))


def _typed(rule: FieldRule, text: Column, has_type: Column) -> tuple[Column, Column | None]:
    """The stored value (null unless valid in type) and, for integers, the JSON number."""
    from pyspark.sql import functions as F

    if rule.spark_type == "string":
        return F.when(has_type, text), None
    if rule.spark_type == "boolean":
        return F.when(has_type, text == "true"), None
    if rule.spark_type == "double":
        # The text is a JSON number literal here; the cast rounds it as a JSON decoder does.
        return F.when(has_type, text.try_cast("double")), None
    if rule.spark_type == "integer":
        # JSON Schema's integer is any number with a zero fraction: 5, 5.0 and 1e2.
        number = F.when(has_type, text.try_cast("double"))
        whole = (number == F.rint(number)) & number.between(*_INT32)
        return F.when(whole, number.cast("int")), number
    if rule.spark_type == "timestamp":
        # The schema's pattern decides; Spark's cast reads every form it admits (no offset
        # is UTC, the session time zone).
        return F.when(has_type & text.rlike(rule.pattern or ""),
                      text.try_cast("timestamp")), None
    raise ValueError(f"no cast for {rule.spark_type}")


def _num(bound: float) -> str:
    return str(int(bound)) if bound.is_integer() and abs(bound) < 2**53 else f"{bound:g}"


def _problems(rule: FieldRule, kind: Column, value: Column,
              number: Column | None) -> list[Column]:
    """Conditions (in order) that make this field invalid, each with its message."""
    from pyspark.sql import functions as F

    name = rule.name
    present = kind != _ABSENT  # absent and null are alike
    checks: list[Column] = []
    if rule.required:
        checks.append(F.when(~present, F.lit(f"missing required field '{name}'")))
    checks.append(F.when(kind == _WRONG_TYPE,
                         F.lit(f"'{name}' must be a JSON {rule.json_type}")))
    bounded = value
    if number is not None:
        bounded = number
        checks.append(F.when(number != F.rint(number), F.concat(
            F.lit(f"'{name}' is not an integer: "), number.cast("string"))))
    if rule.ge is not None:
        checks.append(F.when(bounded < rule.ge, F.lit(f"'{name}' must be >= {_num(rule.ge)}")))
    if rule.le is not None:
        checks.append(F.when(bounded > rule.le, F.lit(f"'{name}' must be <= {_num(rule.le)}")))
    # What else leaves no value: a timestamp off the pattern, or a cast that failed.
    what = "an ISO-8601 timestamp" if rule.spark_type == "timestamp" else (
        f"a valid {rule.spark_type}")
    checks.append(F.when(present & value.isNull(), F.lit(f"'{name}' is not {what}")))
    if rule.min_length is not None:
        message = (f"'{name}' is empty" if rule.min_length == 1
                   else f"'{name}' must have at least {rule.min_length} characters")
        checks.append(F.when(F.length(value) < rule.min_length, F.lit(message)))
    if rule.max_length is not None:
        checks.append(F.when(F.length(value) > rule.max_length,
                             F.lit(f"'{name}' must have at most {rule.max_length} characters")))
    if rule.allowed:
        checks.append(
            F.when(~value.isin(*rule.allowed),
                   F.concat(F.lit(f"'{name}' has unknown value "), F.substring(value, 1, 60)))
        )
    if rule.pattern and rule.spark_type != "timestamp":
        checks.append(F.when(~value.rlike(rule.pattern),
                             F.lit(f"'{name}' does not match {rule.pattern}")))
    return checks


def _build_expressions(value_col: str) -> _ParseExpressions:
    from pyspark.sql import functions as F

    for rule in FIELD_RULES:
        if not _SAFE_NAME.match(rule.name):
            raise ValueError(f"field name {rule.name!r} would need quoting in Spark schemas")
    text = F.col(value_col).cast("string")
    strings = ", ".join(f"`{r.name}` STRING" for r in FIELD_RULES)
    variants = ", ".join(f"{r.name}: VARIANT" for r in FIELD_RULES if not _typed_by_text(r))
    doc = F.col(_DOC)
    # Each field as a VARIANT, for its JSON type; null unless `$[0]` is an object.
    fields = F.try_variant_get(doc, "$[0]", f"struct<{variants}>")
    # `[value]` parses only if the value is JSON, and `$[1]` is absent only if it is one
    # value. Spark ignores text after the array's closing bracket, though: `{...}] x` still
    # parses. Wrapped in an object instead, that text would have to close the object,
    # which a `]` cannot, so a second parse (only of values holding a `]`) catches it.
    not_object = (
        F.col(value_col).isNull() | doc.isNull() | fields.isNull() | ~F.is_valid_utf8(text)
        | F.variant_get(doc, "$[1]", "variant").isNotNull()
        | (text.contains("]")
           & F.try_parse_json(F.concat(F.lit('{"":'), text, F.lit("}"))).isNull())
    )

    typed: list[Column] = []
    problems: list[Column] = []
    for rule in FIELD_RULES:
        kind = F.col(_KINDS)[rule.name]
        value, number = _typed(rule, F.col(_TEXT)[rule.name], kind == _RIGHT_TYPE)
        typed.append(value.alias(rule.name))
        if number is not None:
            typed.append(number.alias(_number_col(rule)))
            number = F.col(_number_col(rule))
        problems.extend(_problems(rule, kind, F.col(rule.name), number))
    return _ParseExpressions(
        doc=F.try_parse_json(F.concat(F.lit("["), text, F.lit("]"))),
        text=F.from_json(text, strings),
        fields=fields,
        not_object=not_object,
        kinds=F.struct(*[_kind(r, F.col(_FIELDS), F.col(_TEXT)[r.name]).alias(r.name)
                         for r in FIELD_RULES]),
        typed=typed,
        reason=F.coalesce(F.when(F.col(_NOT_OBJECT), F.lit(NOT_AN_OBJECT)), *problems),
    )


def contract_columns() -> list[str]:
    return [r.name for r in FIELD_RULES]
