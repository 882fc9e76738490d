"""Kafka value bytes -> typed TransactionEvent columns plus the reason a record is invalid.

The published JSON Schema decides what is valid, and every check here is derived from it
(`contracts.spark_schema.FIELD_RULES`), so the stream, the pydantic model and any JSON
Schema validator give the same verdict on every record.

That needs each field's JSON type, which `from_json` blurs: a STRING field takes any token
as text, so `"customer_id": 42` and `"customer_id": "42"` look alike. So the value is read
twice, in one pass over the rows:

- `from_json` gives each field's value: strings as text, numbers as DOUBLE and booleans as
  BOOLEAN, which come out null for a token of any other type;
- `try_parse_json` of `[value]` (a VARIANT) says whether the bytes are exactly one JSON
  value, strictly as RFC 8259 has it, and knows every field's JSON type. Asking it
  (`schema_of_variant`) costs a VARIANT per field, so it is asked only when `from_json`
  leaves the type open: a null number or boolean (absent, null, or of another type?), or
  a string field whose text looks like what `from_json` makes of a number, a boolean, an
  object or an array.

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

_JSON = "_json"  # the record's fields from `from_json` (strings, doubles, booleans)
# from_json's corrupt-record column: set when any token had the wrong type (or when the
# record has a key of this name, which only sends it down the exact, slower path).
_CONVERSION_FAILED = "_conversion_failed"
_NOT_OBJECT = "_not_object"  # the value is not exactly one JSON object
_KINDS = "_kinds"  # per field: absent, of the right JSON type, or of another (one struct)
_INT32 = (-(2**31), 2**31 - 1)
# A field's JSON type, reduced to what the checks need (an int compares far cheaper than
# the type's name, which the checks would otherwise read and compare many times a row).
_ABSENT, _RIGHT_TYPE, _WRONG_TYPE = 0, 1, 2
_NUMBER_TYPES = ("BIGINT", "DOUBLE")  # and DECIMAL(p,s)
_JSON_SPACE = " \t\r\n"
_FROM_JSON_TYPES = {"string": "STRING", "timestamp": "STRING", "integer": "DOUBLE",
                    "double": "DOUBLE", "boolean": "BOOLEAN"}
# What `from_json` makes of a token that is not a string, in a STRING field: an integer's
# digits, a double as Java prints it (`100.0` for 1e2, `1.5E10`, `"Infinity"` quoted),
# `true`, `false`, or the compact JSON of an object or array. A text unlike all of these
# was a JSON string; one like them may have been, and its JSON type is looked up.
_MAYBE_NOT_A_STRING = (r'^(?:-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false'
                       r'|["\[{][\s\S]*)(?![\s\S])')
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
    from pyspark.sql import functions as F

    allow_duplicate_keys(df.sparkSession)
    e = _expressions(value_col)
    kept = [F.col(f"`{c}`") for c in df.columns]
    # Three steps, each dropping what the next no longer needs, shaped for the JIT:
    # - everything that reads the JSON in one step: `from_json` cannot be compiled into a
    #   whole stage anyway, and out of one Spark splits the 31 kinds into small methods
    #   (inside one it inlines them into a method too large to compile well, ~2x slower);
    #   both parses are written once in it and computed once (common subexpressions);
    # - the typed values, then the reason: whole-stage code, with few input columns (the
    #   kinds travel as one struct) so each step's code stays in a method of its own.
    return (df.select("*", e.json.alias(_JSON), e.not_object.alias(_NOT_OBJECT),
                      e.kinds.alias(_KINDS))
            .select(*kept, _NOT_OBJECT, _KINDS, *e.typed)
            .select(*kept, *contract_columns(), e.reason.alias(REASON)))


@dataclass(frozen=True)
class _ParseExpressions:
    json: Column
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


def _json_type_kind(rule: FieldRule, doc: Column) -> Column:
    """The field's kind from its JSON type in the VARIANT: the exact, costlier answer."""
    from pyspark.sql import functions as F

    json_type = F.schema_of_variant(F.variant_get(doc, f"$[0].{rule.name}", "variant"))
    if rule.json_type == "string":
        right = json_type == "STRING"
    elif rule.json_type == "boolean":
        right = json_type == "BOOLEAN"
    else:  # integer and number: any JSON number; integral or not is checked on the value
        right = json_type.isin(*_NUMBER_TYPES) | json_type.startswith("DECIMAL")
    return (F.when(json_type.isNull() | (json_type == "VOID"), F.lit(_ABSENT))
            .when(right, F.lit(_RIGHT_TYPE)).otherwise(F.lit(_WRONG_TYPE)))


def _checked_by_value(rule: FieldRule) -> bool:
    """A string field whose own check rejects whatever `from_json` makes of a number,
    boolean, object or array: a closed set of words none of which `_MAYBE_NOT_A_STRING`
    matches, or a pattern that starts with a date or three capitals. Its JSON type needs
    no look-up. (For a pattern that is an argument, not a proof: the guard below only
    catches a pattern that accepts one of these texts outright.)"""
    if rule.json_type != "string":
        return False
    if rule.allowed:
        return not any(re.search(_MAYBE_NOT_A_STRING, v) for v in rule.allowed)
    samples = ("0", "-1", "100.0", "1.5E10", '"Infinity"', "true", "false", "{}", "[]",
               '{"a":"USD"}', '["USD"]', "2025", "123")
    return bool(rule.pattern) and not any(re.search(rule.pattern, t) for t in samples)


def _kind(rule: FieldRule, value: Column, failed: Column, doc: Column) -> Column:
    """Absent (or null), of the JSON type the field's schema asks for, or of another.

    `value` is the field from `from_json`, `failed` its corrupt-record column. CASE
    evaluates the VARIANT lookup only for the rows that reach it.
    """
    from pyspark.sql import functions as F

    if _checked_by_value(rule):
        return F.when(value.isNull(), F.lit(_ABSENT)).otherwise(F.lit(_RIGHT_TYPE))
    if rule.json_type == "string":
        # Such a text starts with `"`, `-`, a digit, `[` or `{` (or is true/false): a few
        # byte-wise comparisons rule most strings out, with no allocation, and only the
        # rest meets the pattern (which copies the text into a Java string).
        first_may_fit = ((value < ":") | (value >= "{") | ((value >= "[") & (value < "\\"))
                         | value.isin("true", "false"))
        may_be_other = first_may_fit & value.rlike(_MAYBE_NOT_A_STRING)
        return (F.when(value.isNull(), F.lit(_ABSENT))
                .when(~may_be_other, F.lit(_RIGHT_TYPE))
                .otherwise(_json_type_kind(rule, doc)))
    # A DOUBLE or BOOLEAN field of from_json is null for a token of another type, but a
    # repeated key keeps an earlier good value over a later bad one (`{"q": 2, "q": "x"}`):
    # any failed token flags the record, and a flagged record's types are looked up.
    return (F.when(value.isNotNull() & failed.isNull(), F.lit(_RIGHT_TYPE))
            .otherwise(_json_type_kind(rule, doc)))


def _typed(rule: FieldRule, text: Column, has_type: Column) -> tuple[Column, Column | None]:
    """The stored value (null unless valid in type) and, for integers, the JSON number.

    `text` is the field from `from_json`: text for strings and timestamps, a double for
    numbers (rounded as any JSON decoder rounds), a boolean for booleans.
    """
    from pyspark.sql import functions as F

    if rule.spark_type in ("string", "boolean", "double"):
        return F.when(has_type, text), None
    if rule.spark_type == "integer":
        # JSON Schema's integer is any number with a zero fraction: 5, 5.0 and 1e2.
        number = F.when(has_type, text)
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
    schema = ", ".join([*(f"`{r.name}` {_FROM_JSON_TYPES[r.spark_type]}" for r in FIELD_RULES),
                        f"`{_CONVERSION_FAILED}` STRING"])
    doc = F.try_parse_json(F.concat(F.lit("["), text, F.lit("]")))
    json = F.from_json(text, schema, {"allowNonNumericNumbers": "false",
                                      "columnNameOfCorruptRecord": _CONVERSION_FAILED})
    # `[value]` parses only if the value is JSON, `$[1]` is absent only if it is one value,
    # and that value is an object if its first character is `{`. Spark ignores text after
    # the array's closing bracket, though: `{...}] x` still parses. Wrapped in an object
    # instead, that text would have to close the object, which a `]` cannot, so a second
    # parse (only of values holding a `]`) catches it.
    # `doc` first: an operand that is always evaluated lets Spark compute it once for
    # every use in the step (the later ones are conditional).
    not_object = (
        doc.isNull() | ~F.is_valid_utf8(text)
        | ~F.ltrim(text, F.lit(_JSON_SPACE)).startswith("{")
        | F.variant_get(doc, "$[1]", "variant").isNotNull()
        | (text.contains("]")
           & F.try_parse_json(F.concat(F.lit('{"":'), text, F.lit("}"))).isNull())
    )

    typed: list[Column] = []
    problems: list[Column] = []
    for rule in FIELD_RULES:
        kind = F.col(_KINDS)[rule.name]
        value, number = _typed(rule, F.col(_JSON)[rule.name], kind == _RIGHT_TYPE)
        typed.append(value.alias(rule.name))
        if number is not None:
            typed.append(number.alias(_number_col(rule)))
            number = F.col(_number_col(rule))
        problems.extend(_problems(rule, kind, F.col(rule.name), number))
    return _ParseExpressions(
        json=json,
        not_object=not_object,
        kinds=F.struct(*[_kind(r, json[r.name], json[_CONVERSION_FAILED], doc).alias(r.name)
                         for r in FIELD_RULES]),
        typed=typed,
        reason=F.coalesce(F.when(F.col(_NOT_OBJECT), F.lit(NOT_AN_OBJECT)), *problems),
    )


def contract_columns() -> list[str]:
    return [r.name for r in FIELD_RULES]
