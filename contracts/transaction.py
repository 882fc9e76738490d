"""The 31-field TransactionEvent of seed 001 §4: the one definition of the record.

The Spark schema and the stream's validation rules are derived from this model
(`contracts.spark_schema`), so the record is never written down twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

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


def _as_utc(value: datetime) -> datetime:
    # A timestamp without an offset is taken as UTC (seed 001 §4: "ISO-8601 UTC timestamp").
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
NonEmptyStr = Annotated[str, Field(min_length=1)]


class TransactionEvent(BaseModel):
    """One retail/e-commerce transaction line, as produced to Kafka and stored in Delta."""

    model_config = ConfigDict(frozen=True, extra="ignore", use_enum_values=True)

    transaction_id: NonEmptyStr
    event_timestamp: UtcDatetime
    processing_timestamp: UtcDatetime | None = None
    customer_id: NonEmptyStr
    customer_tier: CustomerTier | None = None
    product_id: NonEmptyStr
    product_name: NonEmptyStr
    category: Category
    sub_category: str | None = None
    brand: str | None = None
    quantity: Annotated[int, Field(ge=1, le=2_147_483_647)]
    unit_price: Annotated[float, Field(ge=0)]
    discount_percent: Annotated[float, Field(ge=0, le=100)] | None = 0.0
    total_amount: Annotated[float, Field(ge=0)]
    tax_amount: Annotated[float, Field(ge=0)] | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    payment_method: PaymentMethod
    card_network: CardNetwork | None = None
    transaction_status: TransactionStatus
    channel: Channel
    store_id: str | None = None
    region: Region
    city: NonEmptyStr
    state: str | None = None
    postal_code: str | None = None
    device_type: DeviceType | None = None
    session_id: str | None = None
    ip_address: str | None = None
    is_fraudulent: StrictBool | None = None
    fraud_score: Annotated[float, Field(ge=0, le=1)] | None = None
    batch_id: str | None = None

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
assert len(TRANSACTION_FIELDS) == 31, "seed 001 §4 defines exactly 31 fields"
