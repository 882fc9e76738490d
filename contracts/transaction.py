"""The 31-field TransactionEvent: the one definition of the record.

The published JSON Schema (`schemas/transaction_event.schema.json`) is generated from this
model, and the stream's checks are derived from that schema (`contracts.spark_schema`), so
the model, the schema and the stream give the same verdict on every record and the record
is never written down twice.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
)

from contracts.errors import ContractError, ErrorCode


class Category(StrEnum):
    ELECTRONICS = "electronics"
    CLOTHING = "clothing"
    GROCERY = "grocery"
    HOME_GARDEN = "home_garden"
    SPORTS = "sports"
    BEAUTY = "beauty"
    AUTOMOTIVE = "automotive"
    BOOKS = "books"
    TOYS = "toys"
    PHARMACY = "pharmacy"


class CustomerTier(StrEnum):
    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"


class PaymentMethod(StrEnum):
    CREDIT_CARD = "credit_card"
    DEBIT_CARD = "debit_card"
    UPI = "upi"
    WALLET = "wallet"
    BANK_TRANSFER = "bank_transfer"
    COD = "cod"
    GIFT_CARD = "gift_card"


class CardNetwork(StrEnum):
    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    RUPAY = "rupay"
    DISCOVER = "discover"


class TransactionStatus(StrEnum):
    COMPLETED = "completed"
    PENDING = "pending"
    FAILED = "failed"
    REFUNDED = "refunded"
    CHARGEBACK = "chargeback"


class Channel(StrEnum):
    POS_IN_STORE = "pos_in_store"
    WEB = "web"
    MOBILE_APP = "mobile_app"
    MARKETPLACE = "marketplace"
    CALL_CENTER = "call_center"


class Region(StrEnum):
    NORTH = "north"
    SOUTH = "south"
    EAST = "east"
    WEST = "west"
    CENTRAL = "central"
    NORTHEAST = "northeast"


class DeviceType(StrEnum):
    ANDROID = "android"
    IOS = "ios"
    DESKTOP = "desktop"
    TABLET = "tablet"


# ---- JSON types -------------------------------------------------------------------------
#
# The published JSON Schema (`schemas/transaction_event.schema.json`) is the one rule of what
# a valid record is. Pydantic's lax mode would coerce ("5" -> 5, true -> 1, 1700000000 -> a
# datetime), so every field first checks the JSON type of the decoded value, the way a JSON
# Schema validator does, and only then lets pydantic convert it.

MAX_DOUBLE = sys.float_info.max
"""Upper bound of every unbounded number: the stored column is a double, and a JSON number
beyond it (1e400) is rejected by the schema in every language instead of becoming inf."""

_YEAR = "(?:19|2[01])[0-9]{2}"
_LEAP_YEAR = "(?:(?:19|2[01])(?:0[48]|[2468][048]|[13579][26])|2000)"
_MONTH_DAY = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
_OFFSET = "(?:Z|[+-](?:(?:0[0-9]|1[0-7]):[0-5][0-9]|18:00))?"
TIMESTAMP_PATTERN = (
    rf"^(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)[T ]{_TIME}{_OFFSET}(?![\s\S])"
)
r"""An ISO-8601 timestamp as the stream accepts it, checked by the model, the Spark parser and
any JSON Schema validator alike.

- `YYYY-MM-DD`, `T` or a space, `hh:mm:ss`, an optional fraction of 1-9 digits (kept to the
  microsecond), and an optional `Z` or `+hh:mm`/`-hh:mm` offset up to 18:00; no offset
  means UTC.
- The calendar is part of the pattern: no February 30, no February 29 outside leap years,
  no month 13, no hour 24, no leap second. Years run from 1900 to 2199: any accepted
  timestamp, in UTC, fits a nanosecond timestamp (1677-2262), which is how Arrow and pandas
  read the INT96 timestamps Spark writes to Delta.
- ECMA-262 syntax only (what JSON Schema patterns are), ASCII `[0-9]` rather than `\d`
  (which matches other digits in Python), and a true end of input `(?![\s\S])`: `$`
  would also match before a trailing newline in Python and Java.
"""
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)


def _json_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a JSON string")
    return value


def _json_integer(value: Any) -> Any:
    # JSON Schema's integer is a number with a zero fractional part: 5, 5.0 and 1e2 are.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a JSON integer")
        return int(value)
    return value


def _json_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number")
    try:
        return float(value)
    except OverflowError:  # an integer beyond any double: above MAX_DOUBLE
        raise ValueError(f"must be <= {MAX_DOUBLE!r}") from None


def _json_timestamp(value: Any) -> Any:
    if isinstance(value, datetime):  # built in Python (e.g. rows read back from Delta)
        return value
    if not isinstance(value, str) or _TIMESTAMP_RE.search(value) is None:
        raise ValueError("must be an ISO-8601 timestamp string, e.g. 2025-01-15T14:32:07.123Z")
    return value


def _as_utc(value: datetime) -> datetime:
    # A timestamp without an offset is taken as UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# No `format: date-time`: that is RFC 3339, which requires an offset, so a validator that
# asserts formats would reject the offset-less form the stream accepts. The pattern is the
# whole rule, and validators apply patterns whether or not they check formats.
_TIMESTAMP_JSON_SCHEMA = {
    "type": "string",
    "pattern": TIMESTAMP_PATTERN,
    "description": "ISO-8601 date and time; without an offset it is UTC.",
}

JsonStr = Annotated[str, BeforeValidator(_json_string)]
NonEmptyStr = Annotated[str, Field(min_length=1), BeforeValidator(_json_string)]
UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_json_timestamp),
    AfterValidator(_as_utc),
    WithJsonSchema(_TIMESTAMP_JSON_SCHEMA),
]


def _integer(ge: int, le: int) -> Any:
    # Constraints go before the validator: after it, pydantic cannot express them as
    # JSON Schema keywords and would export them raw ("ge") instead of "minimum".
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_json_integer)]


def _number(ge: float, le: float = MAX_DOUBLE) -> Any:
    return Annotated[float, Field(ge=ge, le=le), BeforeValidator(_json_number)]


def _closed(enum: type[StrEnum]) -> Any:
    """A closed set of strings: the exact value, never a coerced number or boolean."""
    return Annotated[enum, BeforeValidator(_json_string)]


class TransactionEvent(BaseModel):
    """One retail/e-commerce transaction line, as produced to Kafka and stored in Delta."""

    model_config = ConfigDict(frozen=True, extra="ignore", use_enum_values=True)

    transaction_id: NonEmptyStr
    event_timestamp: UtcDatetime
    processing_timestamp: UtcDatetime | None = None
    customer_id: NonEmptyStr
    customer_tier: _closed(CustomerTier) | None = None
    product_id: NonEmptyStr
    product_name: NonEmptyStr
    category: _closed(Category)
    sub_category: JsonStr | None = None
    brand: JsonStr | None = None
    quantity: _integer(1, 2_147_483_647)
    unit_price: _number(0)
    discount_percent: _number(0, 100) | None = 0.0
    total_amount: _number(0)
    tax_amount: _number(0) | None = None
    # Exactly three characters AND the pattern: `^...$` alone would let "USD\n" through in
    # Python and Java (where `$` also matches before a final newline), not in other engines.
    currency: Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$"),
                        BeforeValidator(_json_string)]
    payment_method: _closed(PaymentMethod)
    card_network: _closed(CardNetwork) | None = None
    transaction_status: _closed(TransactionStatus)
    channel: _closed(Channel)
    store_id: JsonStr | None = None
    region: _closed(Region)
    city: NonEmptyStr
    state: JsonStr | None = None
    postal_code: JsonStr | None = None
    device_type: _closed(DeviceType) | None = None
    session_id: JsonStr | None = None
    ip_address: JsonStr | None = None
    is_fraudulent: StrictBool | None = None
    fraud_score: _number(0, 1) | None = None
    batch_id: JsonStr | None = None

    def encode(self) -> bytes:
        """JSON bytes as produced to Kafka (timestamps ISO-8601 UTC with `Z`)."""
        import orjson

        return orjson.dumps(self.to_json_dict())

    def to_json_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="python")
        for key in ("event_timestamp", "processing_timestamp"):
            if data[key] is not None:
                data[key] = _iso_z(data[key])
        return data

    @classmethod
    def decode(cls, raw: bytes | str) -> TransactionEvent:
        """Parse JSON bytes into a valid event or raise `ContractError`."""
        import orjson
        from pydantic import ValidationError

        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ContractError(ErrorCode.INVALID_REQUEST, f"not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ContractError(ErrorCode.INVALID_REQUEST, "a TransactionEvent is a JSON object")
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            raise ContractError(ErrorCode.INVALID_REQUEST, _short(exc)) from None


def _iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _short(exc: Any) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


TRANSACTION_FIELDS: tuple[str, ...] = tuple(TransactionEvent.model_fields)
assert len(TRANSACTION_FIELDS) == 31, "the record has exactly 31 fields"
