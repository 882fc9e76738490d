"""Hand-built TransactionEvent rows for the analytics tests.

Generated here, independently of the project's producers, so the tests do not share
assumptions (or bugs) with the generator.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

Row = dict[str, Any]

# The record's Spark schema (docs/transaction-record.md), written out here rather than
# imported so the tests pin the contract.
TRANSACTION_SCHEMA = StructType(
    [
        StructField("transaction_id", StringType(), False),
        StructField("event_timestamp", TimestampType(), False),
        StructField("processing_timestamp", TimestampType(), True),
        StructField("customer_id", StringType(), False),
        StructField("customer_tier", StringType(), True),
        StructField("product_id", StringType(), False),
        StructField("product_name", StringType(), False),
        StructField("category", StringType(), False),
        StructField("sub_category", StringType(), True),
        StructField("brand", StringType(), True),
        StructField("quantity", IntegerType(), False),
        StructField("unit_price", DoubleType(), False),
        StructField("discount_percent", DoubleType(), True),
        StructField("total_amount", DoubleType(), False),
        StructField("tax_amount", DoubleType(), True),
        StructField("currency", StringType(), False),
        StructField("payment_method", StringType(), False),
        StructField("card_network", StringType(), True),
        StructField("transaction_status", StringType(), False),
        StructField("channel", StringType(), False),
        StructField("store_id", StringType(), True),
        StructField("region", StringType(), False),
        StructField("city", StringType(), False),
        StructField("state", StringType(), True),
        StructField("postal_code", StringType(), True),
        StructField("device_type", StringType(), True),
        StructField("session_id", StringType(), True),
        StructField("ip_address", StringType(), True),
        StructField("is_fraudulent", BooleanType(), True),
        StructField("fraud_score", DoubleType(), True),
        StructField("batch_id", StringType(), True),
    ]
)
# The Delta table adds its partition column; the analyses must not depend on it.
DELTA_SCHEMA = StructType([*TRANSACTION_SCHEMA.fields, StructField("event_date", DateType())])

STATUSES = ["completed", "pending", "failed", "refunded", "chargeback"]
CHANNELS = ["pos_in_store", "web", "mobile_app", "marketplace", "call_center"]
PAYMENTS = ["credit_card", "debit_card", "upi", "wallet", "bank_transfer", "cod", "gift_card"]
CARD_PAYMENTS = {"credit_card", "debit_card"}
NETWORKS = ["visa", "mastercard", "amex", "rupay", "discover"]
TIERS = ["bronze", "silver", "gold", "platinum", None]
CITIES = {
    "north": ["Delhi", "Chandigarh"],
    "south": ["Chennai", "Bengaluru", "Kochi"],
    "east": ["Kolkata"],
    "west": ["Mumbai", "Pune"],
    "central": ["Bhopal", "Nagpur"],
    "northeast": ["Guwahati"],
}
# product_id -> (name, category, sub_category, brand); some nullable fields are null.
PRODUCTS: dict[str, tuple[str, str, str | None, str | None]] = {
    f"SKU-{i:03d}": (
        f"Product {i}",
        cat,
        None if i % 7 == 0 else f"{cat}_sub{i % 3}",
        None if i % 5 == 0 else f"Brand{i % 4}",
    )
    for i, cat in enumerate(
        [
            "electronics",
            "clothing",
            "grocery",
            "home_garden",
            "sports",
            "beauty",
            "automotive",
            "books",
            "toys",
            "pharmacy",
        ]
        * 2,
        start=1,
    )
}
ONE_DAY_PRODUCT = "SKU-ONEDAY"
DAY0 = datetime(2025, 1, 14, tzinfo=UTC)


def make_row(
    rnd: random.Random,
    n: int,
    *,
    ts: datetime,
    customer_id: str,
    tier: str | None,
    product_id: str,
    status: str,
    quantity: int,
    unit_price: float,
    discount: float | None,
    is_fraudulent: bool | None,
    fraud_score: float | None,
    channel: str | None = None,
    payment: str | None = None,
    region: str | None = None,
) -> Row:
    """One TransactionEvent row; unspecified dimensions are drawn from `rnd`."""
    name, category, sub_category, brand = (
        ("One Day Wonder", "toys", "toys_sub0", "Brand0")
        if product_id == ONE_DAY_PRODUCT
        else PRODUCTS[product_id]
    )
    channel = channel or rnd.choice(CHANNELS)
    payment = payment or rnd.choice(PAYMENTS)
    region = region or rnd.choice(sorted(CITIES))
    network = rnd.choice([*NETWORKS, None]) if payment in CARD_PAYMENTS else None
    total = round(quantity * unit_price * (1 - (discount or 0.0) / 100), 2)
    return {
        "transaction_id": f"txn-{n:05d}",
        "event_timestamp": ts,
        "processing_timestamp": None,
        "customer_id": customer_id,
        "customer_tier": tier,
        "product_id": product_id,
        "product_name": name,
        "category": category,
        "sub_category": sub_category,
        "brand": brand,
        "quantity": quantity,
        "unit_price": unit_price,
        "discount_percent": discount,
        "total_amount": total,
        "tax_amount": round(total * 0.09, 2),
        "currency": "USD",
        "payment_method": payment,
        "card_network": network,
        "transaction_status": status,
        "channel": channel,
        "store_id": None if channel == "marketplace" else f"STORE-{rnd.randint(1, 6):02d}",
        "region": region,
        "city": rnd.choice(CITIES[region]),
        "state": None,
        "postal_code": None,
        "device_type": None if channel == "pos_in_store" else "android",
        "session_id": None,
        "ip_address": None,
        "is_fraudulent": is_fraudulent,
        "fraud_score": fraud_score,
        "batch_id": None,
    }


def build_rows(seed: int = 20250114) -> list[Row]:
    """A few hundred varied, deterministic rows covering every branch of every analysis."""
    rnd = random.Random(seed)
    rows: list[Row] = []

    def add(**kw: Any) -> None:
        rows.append(make_row(rnd, len(rows), **kw))

    def rand_ts() -> datetime:
        return DAY0 + timedelta(
            days=rnd.randint(0, 3),
            hours=rnd.choice([0, 3, 9, 12, 13, 18, 23]),
            minutes=rnd.randint(0, 59),
            seconds=rnd.randint(0, 59),
            microseconds=rnd.choice([0, 123_456, 999_999]),
        )

    customers = [f"CUST-{i:04d}" for i in range(1, 41)]
    tiers = {c: rnd.choice(TIERS) for c in customers}
    for _ in range(330):
        cust = rnd.choice(customers)
        score_kind = rnd.random()
        add(
            ts=rand_ts(),
            customer_id=cust,
            tier=tiers[cust],
            product_id=rnd.choice(sorted(PRODUCTS)),
            status=rnd.choices(STATUSES, weights=[60, 10, 10, 10, 10])[0],
            quantity=rnd.randint(1, 6),
            unit_price=round(rnd.uniform(1, 400), 2),
            discount=None if rnd.random() < 0.2 else rnd.choice([0.0, 5.0, 12.5, 30.0]),
            is_fraudulent=rnd.choices([True, False, None], weights=[10, 80, 10])[0],
            fraud_score=None if score_kind < 0.15 else round(rnd.random(), 3),
        )

    # Customers that land in each segment (completed rows only count).
    def spend(cust: str, tier: str | None, amounts: list[float], day: int = 1) -> None:
        for k, amount in enumerate(amounts):
            add(
                ts=DAY0 + timedelta(days=day, hours=10 + k, minutes=7 * k),
                customer_id=cust,
                tier=tier,
                product_id=f"SKU-{k + 1:03d}",
                status="completed",
                quantity=1,
                unit_price=amount,
                discount=None,
                is_fraudulent=False,
                fraud_score=0.01,
            )

    spend("VIP-1", "platinum", [4000.0, 4000.0, 2500.0])  # 10500 -> vip
    spend("VIP-2", "gold", [10000.0])  # exactly the vip threshold
    spend("HIGH-1", "gold", [3000.0, 2000.0])  # exactly 5000 -> high_value
    spend("MID-1", "silver", [600.0, 400.0], day=2)  # exactly 1000 -> mid_value
    spend("ONE-1", "bronze", [50.0])  # one_time
    spend("LOW-1", None, [20.0, 30.0])  # low_value, null tier
    spend("TWO-TIER", "silver", [100.0])  # same customer seen with two tiers -> two rows
    spend("TWO-TIER", "gold", [1200.0], day=3)

    # A product sold on one UTC day only, at both ends of that day.
    for k, hms in enumerate([(0, 0, 0), (11, 30, 0), (23, 59, 59)]):
        add(
            ts=DAY0 + timedelta(days=2, hours=hms[0], minutes=hms[1], seconds=hms[2]),
            customer_id=customers[k],
            tier=tiers[customers[k]],
            product_id=ONE_DAY_PRODUCT,
            status="completed",
            quantity=k + 2,
            unit_price=19.99,
            discount=None if k == 0 else 10.0,
            is_fraudulent=None,
            fraud_score=None,
        )

    # Fraud edge cases: label without score, score without label, score exactly at 0.7.
    for k, (label, score) in enumerate([(True, None), (None, 0.95), (False, 0.7), (None, 0.71)]):
        add(
            ts=DAY0 + timedelta(hours=5, minutes=k),
            customer_id=customers[k],
            tier=tiers[customers[k]],
            product_id="SKU-002",
            status=STATUSES[k],
            quantity=1,
            unit_price=99.0,
            discount=0.0,
            is_fraudulent=label,
            fraud_score=score,
            channel="web",
            payment="upi",
            region="south",
        )
    return rows


def with_event_date(rows: list[Row]) -> list[Row]:
    return [{**r, "event_date": r["event_timestamp"].date()} for r in rows]
