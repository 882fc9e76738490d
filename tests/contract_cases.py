"""What a valid TransactionEvent is, asked three ways, and the records to ask about.

The published JSON Schema is the rule; the pydantic model and the stream's Spark parser
must give the same verdict on every record. This module holds the two Python verdicts,
a hand-written list of edge cases (each labelled with the verdict the schema gives, and a
test checks that the schema does), and hypothesis strategies that perturb valid records.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from contracts.errors import ContractError
from contracts.schema_export import SAMPLE_TRANSACTION, json_schema_documents
from contracts.transaction import TRANSACTION_FIELDS, TransactionEvent

SCHEMA_FILE = "transaction_event.schema.json"

SAMPLE: dict[str, Any] = dict(SAMPLE_TRANSACTION)


# ---- the two Python verdicts -------------------------------------------------------------


@functools.cache
def _validator(with_formats: bool) -> Draft202012Validator:
    schema = json_schema_documents()[SCHEMA_FILE]
    checker = Draft202012Validator.FORMAT_CHECKER if with_formats else None
    return Draft202012Validator(schema, format_checker=checker)


def schema_accepts(raw: bytes | None, *, with_formats: bool = False) -> bool:
    """The published schema's verdict on raw bytes.

    The bytes must first be JSON (RFC 8259, UTF-8, no lone surrogates): orjson decides
    that, as it does for the model. Numbers are read as IEEE doubles, as in the stream.
    """
    if raw is None:
        return False
    try:
        instance = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return _validator(with_formats).is_valid(instance)


def model_accepts(raw: bytes | None) -> bool:
    """The pydantic model's verdict: `TransactionEvent.decode`."""
    if raw is None:
        return False
    try:
        TransactionEvent.decode(raw)
    except ContractError:
        return False
    return True


# ---- hand-written edge cases -------------------------------------------------------------


def record(**changes: Any) -> bytes:
    """SAMPLE with fields replaced; `MISSING` deletes one, `orjson.Fragment` is raw JSON."""
    body = {k: v for k, v in {**SAMPLE, **changes}.items() if v is not MISSING}
    return orjson.dumps(body)


MISSING = object()
_BODY = orjson.dumps(SAMPLE)
_INNER = _BODY[1:-1]  # the members without the braces, to splice raw text around


def _raw(text: str) -> orjson.Fragment:
    return orjson.Fragment(text.encode())


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes | None
    valid: bool


def _cases() -> list[Case]:
    c: list[tuple[str, bytes | None, bool]] = [
        ("sample", _BODY, True),
        # integers: JSON Schema's integer is any number with a zero fraction
        ("quantity 5.0", record(quantity=5.0), True),
        ("quantity 1e2", record(quantity=_raw("1e2")), True),
        ("quantity 2147483647", record(quantity=2147483647), True),
        ("quantity 2147483647.0", record(quantity=_raw("2147483647.0")), True),
        ("quantity 2147483648", record(quantity=2147483648), False),
        ("quantity 0", record(quantity=0), False),
        ("quantity -0", record(quantity=_raw("-0")), False),
        ("quantity 1.5", record(quantity=1.5), False),
        ("quantity true", record(quantity=True), False),
        ("quantity '5'", record(quantity="5"), False),
        ("quantity null", record(quantity=None), False),
        ("quantity missing", record(quantity=MISSING), False),
        ("quantity 02", _BODY.replace(b'"quantity":2', b'"quantity":02'), False),
        ("quantity 1e400", record(quantity=_raw("1e400")), False),
        ("quantity 2^64", record(quantity=_raw("18446744073709551616")), False),
        # numbers
        ("unit_price -0.0", record(unit_price=-0.0), True),
        ("unit_price -0", record(unit_price=_raw("-0")), True),
        ("unit_price 3 (an integer is a number)", record(unit_price=3), True),
        ("unit_price 1e308", record(unit_price=1e308), True),
        ("unit_price max double", record(unit_price=_raw("1.7976931348623157e308")), True),
        ("unit_price 1e400", record(unit_price=_raw("1e400")), False),
        ("unit_price -1e-300", record(unit_price=-1e-300), False),
        ("unit_price '3.5'", record(unit_price="3.5"), False),
        ("unit_price true", record(unit_price=True), False),
        ("total_amount object", record(total_amount={"amount": 1}), False),
        ("total_amount array", record(total_amount=[1]), False),
        ("discount_percent null", record(discount_percent=None), True),
        ("discount_percent missing", record(discount_percent=MISSING), True),
        ("discount_percent 100", record(discount_percent=100), True),
        ("discount_percent 100.5", record(discount_percent=100.5), False),
        ("discount_percent '0'", record(discount_percent="0"), False),
        ("fraud_score 1", record(fraud_score=1), True),
        ("fraud_score 1.0000001", record(fraud_score=1.0000001), False),
        # booleans
        ("is_fraudulent true", record(is_fraudulent=True), True),
        ("is_fraudulent null", record(is_fraudulent=None), True),
        ("is_fraudulent 'true'", record(is_fraudulent="true"), False),
        ("is_fraudulent 1", record(is_fraudulent=1), False),
        ("is_fraudulent 0", record(is_fraudulent=0), False),
        # strings
        ("customer_id 42", record(customer_id=42), False),
        ("customer_id ''", record(customer_id=""), False),
        ("customer_id ' '", record(customer_id=" "), True),
        ("customer_id NUL", record(customer_id="\u0000"), True),
        ("brand object", record(brand={"name": "Sony"}), False),
        ("brand array", record(brand=["Sony"]), False),
        ("brand 42", record(brand=42), False),
        ("brand true", record(brand=True), False),
        ("brand ''", record(brand=""), True),
        ("brand null", record(brand=None), True),
        ("postal_code number", record(postal_code=400001), False),
        ("product_name with brackets", record(product_name="Pack [2] {x}"), True),
        ("brand emoji", record(brand="Sony \U0001f3a7"), True),
        ("brand surrogate pair escape", record(brand=_raw('"\\ud83c\\udfa7"')), True),
        ("brand lone surrogate escape", record(brand=_raw('"\\ud800"')), False),
        # closed sets
        ("category BOOKS", record(category="BOOKS"), False),
        ("category ' books'", record(category=" books"), False),
        ("category 1", record(category=1), False),
        ("category null", record(category=None), False),
        ("category books", record(category="books"), True),
        ("customer_tier null", record(customer_tier=None), True),
        ("customer_tier Gold", record(customer_tier="Gold"), False),
        ("customer_tier true", record(customer_tier=True), False),
        # currency: exactly three capital ASCII letters
        ("currency EUR", record(currency="EUR"), True),
        ("currency 'USD\\n'", record(currency="USD\n"), False),
        ("currency usd", record(currency="usd"), False),
        ("currency US", record(currency="US"), False),
        ("currency USDX", record(currency="USDX"), False),
        ("currency fullwidth", record(currency="\uff35\uff33\uff24"), False),
        ("currency 123", record(currency=123), False),
        # timestamps: the schema's pattern, calendar included
        ("ts Z", record(event_timestamp="2025-01-15T14:32:07Z"), True),
        ("ts space", record(event_timestamp="2025-01-15 14:32:07Z"), True),
        ("ts no offset", record(event_timestamp="2025-01-15T14:32:07"), True),
        ("ts 9 digits +05:30", record(event_timestamp="2025-01-15T14:32:07.123456789+05:30"),
         True),
        ("ts 1 digit", record(event_timestamp="2025-01-15T14:32:07.5Z"), True),
        ("ts 10 digits", record(event_timestamp="2025-01-15T14:32:07.1234567890Z"), False),
        ("ts +18:00", record(event_timestamp="2025-01-15T14:32:07+18:00"), True),
        ("ts +18:01", record(event_timestamp="2025-01-15T14:32:07+18:01"), False),
        ("ts +0530", record(event_timestamp="2025-01-15T14:32:07+0530"), False),
        ("ts 2024-02-29", record(event_timestamp="2024-02-29T00:00:00Z"), True),
        ("ts 2000-02-29", record(event_timestamp="2000-02-29T00:00:00Z"), True),
        ("ts 2025-02-29", record(event_timestamp="2025-02-29T00:00:00Z"), False),
        ("ts 1900-02-29", record(event_timestamp="1900-02-29T00:00:00Z"), False),
        ("ts 2025-04-31", record(event_timestamp="2025-04-31T00:00:00Z"), False),
        ("ts month 13", record(event_timestamp="2025-13-01T00:00:00Z"), False),
        ("ts hour 24", record(event_timestamp="2025-01-15T24:00:00Z"), False),
        ("ts second 60", record(event_timestamp="2025-01-15T14:32:60Z"), False),
        ("ts no seconds", record(event_timestamp="2025-01-15T14:32Z"), False),
        ("ts lowercase", record(event_timestamp="2025-01-15t14:32:07z"), False),
        ("ts trailing newline", record(event_timestamp="2025-01-15T14:32:07Z\n"), False),
        ("ts leading space", record(event_timestamp=" 2025-01-15T14:32:07Z"), False),
        ("ts year 1899", record(event_timestamp="1899-12-31T23:59:59Z"), False),
        ("ts year 2199", record(event_timestamp="2199-12-31T23:59:59-18:00"), True),
        ("ts year 2200", record(event_timestamp="2200-01-01T00:00:00Z"), False),
        ("ts year 2999", record(event_timestamp="2999-12-31T23:59:59Z"), False),
        ("ts 2100-02-29", record(event_timestamp="2100-02-29T00:00:00Z"), False),
        ("ts 1900-01-01+18:00", record(event_timestamp="1900-01-01T00:00:00+18:00"), True),
        ("ts epoch number", record(event_timestamp=1736951527), False),
        ("ts missing", record(event_timestamp=MISSING), False),
        ("processing_timestamp set", record(processing_timestamp="2025-01-15T14:33:00Z"),
         True),
        ("processing_timestamp bad", record(processing_timestamp="soon"), False),
        # the object itself
        ("unknown nested field", record(extra={"quantity": "x", "list": [1, {"a": []}]}), True),
        ("other-case name ignored", record(Quantity="many"), True),
        ("escaped key", _BODY.replace(b'"quantity":', b'"quantit\\u0079":'), True),
        ("duplicate key, last valid", b'{"quantity":"x",' + _INNER + b"}", True),
        ("duplicate key, last invalid", b"{" + _INNER + b',"quantity":"x"}', False),
        ("whitespace around", b" \n\t" + _BODY + b"\r\n", True),
        ("trailing text", _BODY + b" x", False),
        ("trailing ]", _BODY + b"]", False),
        ("trailing ] and more", _BODY + b"] {}", False),
        ("trailing }", _BODY + b"}", False),
        ("two objects", _BODY + b"{}", False),
        ("two objects, comma", _BODY + b",{}", False),
        ("in an array", b"[" + _BODY + b"]", False),
        ("byte order mark", b"\xef\xbb\xbf" + _BODY, False),
        ("form feed before", b"\x0c" + _BODY, False),
        ("invalid UTF-8", _BODY.replace(b"Mumbai", b"Mumb\xffi"), False),
        ("NaN literal", _BODY.replace(b'"fraud_score":0.03', b'"fraud_score":NaN'), False),
        ("single quotes", b"{'quantity': 2}", False),
        ("trailing comma", _BODY[:-1] + b",}", False),
        ("truncated", _BODY[:-1], False),
        ("empty object", b"{}", False),
        ("null", b"null", False),
        ("number", b"42", False),
        ("empty", b"", False),
        ("no value", None, False),
    ]
    return [Case(name, raw, valid) for name, raw, valid in c]


EDGE_CASES: list[Case] = _cases()


# ---- hypothesis strategies -----------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),  # what orjson can encode
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, -1, 0.0, -0.0, 1.0, 5.0, 100, 100.0, 2147483647, 2147483648,
                     2147483647.0, 1e308, 1.7976931348623157e308, -1e-300, 0.5, 1e2]),
    _TEXT,
    st.sampled_from(["", " ", "5", "5.0", "true", "null", "{}", "USD", "USD\n", "usd",
                     "books", "BOOKS", "gold", "visa", "web", "north", "ios", "pending"]),
)
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["a", "quantity", "customer_id", ""]), inner, max_size=3),
), max_leaves=6)

@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """ISO-8601 text the pattern admits, about half of it with one part pushed over an
    edge: the calendar (Feb 29, day 31, month 13), hour 24, second 60, the separator,
    the fraction's length, the offset's form and range, a trailing newline."""
    year = draw(st.integers(1900, 2199))
    month = draw(st.integers(1, 12))
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = calendar_days(month, leap)
    parts = {
        "year": f"{year:04d}", "month": f"{month:02d}",
        "day": f"{draw(st.integers(1, days)):02d}",
        "hour": f"{draw(st.integers(0, 23)):02d}", "minute": f"{draw(st.integers(0, 59)):02d}",
        "second": f"{draw(st.integers(0, 59)):02d}", "sep": draw(st.sampled_from("T ")),
        "frac": draw(st.sampled_from(["", "." + "1" * draw(st.integers(1, 9))])),
        "offset": draw(st.sampled_from(["", "Z", "+00:00", "-05:30", "+18:00", "-18:00",
                                        "+13:45", "-00:00"])),
        "end": "",
    }
    if draw(st.booleans()):
        part, value = draw(st.sampled_from([
            ("year", "1899"), ("year", "2200"), ("year", "2262"), ("year", "0099"),
            ("year", "20250"),
            ("month", "00"), ("month", "13"), ("day", "00"), ("day", f"{days + 1:02d}"),
            ("day", "29"), ("day", "30"), ("day", "31"), ("day", "32"),
            ("hour", "24"), ("minute", "60"), ("second", "60"), ("sep", "t"), ("sep", "_"),
            ("sep", ""), ("frac", "."), ("frac", ".1234567890"), ("offset", "z"),
            ("offset", "+18:01"), ("offset", "+24:00"), ("offset", "+0530"),
            ("offset", "+05"), ("offset", "UTC"), ("end", "\n"), ("end", " "),
        ]))
        parts[part] = value
    p = parts
    return (f"{p['year']}-{p['month']}-{p['day']}{p['sep']}{p['hour']}:{p['minute']}:"
            f"{p['second']}{p['frac']}{p['offset']}{p['end']}")


def calendar_days(month: int, leap: bool) -> int:
    if month == 2:
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _value_for(name: str) -> st.SearchStrategy[Any]:
    if name.endswith("_timestamp"):
        return st.one_of(timestamps(), _JSON)
    return _JSON


@st.composite
def perturbed_records(draw: st.DrawFn, base: Callable[[int], dict[str, Any]]) -> bytes:
    """A valid record (from `base(seed)`) with zero to three fields changed or removed,
    maybe an unknown field, and maybe a key repeated before or after the others."""
    event = dict(base(draw(st.integers(0, 10_000))))
    for name in draw(st.lists(st.sampled_from(TRANSACTION_FIELDS), max_size=3, unique=True)):
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "null"]))
        if action == "delete":
            del event[name]
        elif action == "null":
            event[name] = None
        else:
            event[name] = draw(_value_for(name))
    if draw(st.booleans()):
        event[draw(st.sampled_from(["extra", "Quantity", "note"]))] = draw(_JSON)
    raw = orjson.dumps(event)
    where = draw(st.sampled_from([None, None, "first", "last"]))
    if where is not None and len(raw) > 2:
        # The same key twice: the last one counts.
        name = draw(st.sampled_from(TRANSACTION_FIELDS))
        member = orjson.dumps({name: draw(_value_for(name))})[1:-1]
        raw = (b"{" + member + b"," + raw[1:] if where == "first"
               else raw[:-1] + b"," + member + b"}")
    return raw
