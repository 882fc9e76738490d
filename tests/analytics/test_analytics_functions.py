"""Every batch analysis against an independent plain-Python reference on the same rows."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from worker.analytics import (
    ANALYSES,
    ANALYSIS_TYPES,
    FULL_REPORT,
    OUTPUT_COLUMNS,
    analyses_for,
    channel_performance,
    customer_segmentation,
    fraud_analysis,
    hourly_trends,
    inventory_velocity,
    payment_analysis,
    revenue_by_category,
    revenue_by_region,
)

from .data import ONE_DAY_PRODUCT, Row

pytestmark = pytest.mark.spark

REL = 1e-9
EIGHT = [
    "revenue_by_category",
    "revenue_by_region",
    "payment_analysis",
    "customer_segmentation",
    "fraud_analysis",
    "hourly_trends",
    "channel_performance",
    "inventory_velocity",
]


# ---------------------------------------------------------------- reference helpers


def half_up(x: float, ndigits: int) -> float:
    # Spark rounds a double via BigDecimal(Double.toString(x)).setScale(n, HALF_UP); repr()
    # is the same shortest round-trip decimal. Python's round() would be half-even.
    return float(Decimal(repr(x)).quantize(Decimal(1).scaleb(-ndigits), rounding=ROUND_HALF_UP))


def mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return math.fsum(present) / len(present) if present else None


def group(rows: Iterable[Row], *keys: str) -> dict[tuple[Any, ...], list[Row]]:
    groups: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in keys)].append(r)
    return groups


def completed(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r["transaction_status"] == "completed"]


def total(rs: list[Row], col: str = "total_amount") -> float:
    return math.fsum(r[col] for r in rs)


def distinct(rs: list[Row], col: str) -> int:
    return len({r[col] for r in rs if r[col] is not None})


def nulls_last(v: Any) -> tuple[bool, Any]:
    return (v is None, "" if v is None else v)


def epoch(ts: datetime) -> float:
    # Spark returns naive local-time datetimes; the fixture rows are aware UTC datetimes.
    # Comparing instants makes the check independent of the machine's time zone.
    return ts.timestamp()


def assert_rows(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Row-by-row, in order: floats to REL, timestamps as instants, everything else exact."""
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert list(a) == list(e), f"row {i}: columns differ"
        for col, ev in e.items():
            av = a[col]
            where = f"row {i} column {col}: {av!r} != {ev!r}"
            if isinstance(ev, Rounded):
                assert av in ev.accepted(), where
            elif isinstance(ev, float):
                assert isinstance(av, float), where
                assert av == pytest.approx(ev, rel=REL, abs=1e-12), where
            elif isinstance(ev, datetime):
                assert epoch(av) == epoch(ev), where
            else:
                assert av == ev, where


class Rounded:
    """A value Spark rounds after summing doubles in an order we cannot reproduce.

    The reference sum can differ from Spark's in the last bits, which only matters when the
    unrounded value sits on a rounding boundary: accept the rounding of either neighbour.
    """

    def __init__(self, raw: float | None, ndigits: int) -> None:
        self.raw = raw
        self.ndigits = ndigits

    def accepted(self) -> set[float | None]:
        if self.raw is None:
            return {None}
        return {half_up(self.raw * f, self.ndigits) for f in (1 - 1e-12, 1.0, 1 + 1e-12)}

    def __repr__(self) -> str:
        return f"Rounded({self.raw!r}, {self.ndigits})"


def collect(df: DataFrame) -> list[dict[str, Any]]:
    return [r.asDict() for r in df.collect()]


def key_order(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return [tuple(r[k] for k in keys) for r in rows]


# ------------------------------------------------------ references (docs/analyses.md)


def ref_revenue_by_category(rows: list[Row]) -> list[dict[str, Any]]:
    out = [
        {
            "category": cat,
            "total_revenue": total(rs),
            "avg_order_value": total(rs) / len(rs),
            "transaction_count": len(rs),
            "total_units_sold": sum(r["quantity"] for r in rs),
            "avg_discount_pct": mean(r["discount_percent"] for r in rs),
            "unique_customers": distinct(rs, "customer_id"),
        }
        for (cat,), rs in group(completed(rows), "category").items()
    ]
    return sorted(out, key=lambda r: (-r["total_revenue"], r["category"]))


def ref_revenue_by_region(rows: list[Row]) -> list[dict[str, Any]]:
    out = [
        {
            "region": region,
            "city": city,
            "total_revenue": total(rs),
            "transaction_count": len(rs),
            "avg_order_value": total(rs) / len(rs),
            "active_stores": distinct(rs, "store_id"),
            "unique_customers": distinct(rs, "customer_id"),
        }
        for (region, city), rs in group(completed(rows), "region", "city").items()
    ]
    return sorted(out, key=lambda r: (-r["total_revenue"], r["region"], r["city"]))


def ref_payment_analysis(rows: list[Row]) -> list[dict[str, Any]]:
    done = completed(rows)
    overall = total(done)
    out = [
        {
            "payment_method": method,
            "card_network": network,
            "transaction_count": len(rs),
            "total_revenue": total(rs),
            "avg_transaction_value": total(rs) / len(rs),
            "unique_customers": distinct(rs, "customer_id"),
            "revenue_share_pct": Rounded(total(rs) / overall * 100, 2),
        }
        for (method, network), rs in group(done, "payment_method", "card_network").items()
    ]
    return sorted(
        out,
        key=lambda r: (
            -r["transaction_count"],
            r["payment_method"],
            nulls_last(r["card_network"]),
        ),
    )


def segment(lifetime_value: float, transactions: int) -> str:
    if lifetime_value >= 10000:
        return "vip"
    if lifetime_value >= 5000:
        return "high_value"
    if lifetime_value >= 1000:
        return "mid_value"
    if transactions == 1:
        return "one_time"
    return "low_value"


def ref_customer_segmentation(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for (cust, tier), rs in group(completed(rows), "customer_id", "customer_tier").items():
        ltv = total(rs)
        out.append(
            {
                "customer_id": cust,
                "customer_tier": tier,
                "lifetime_value": ltv,
                "total_transactions": len(rs),
                "avg_order_value": ltv / len(rs),
                "last_purchase_date": max(r["event_timestamp"] for r in rs),
                "first_purchase_date": min(r["event_timestamp"] for r in rs),
                "category_diversity": distinct(rs, "category"),
                "mobile_orders": sum(r["channel"] == "mobile_app" for r in rs),
                "web_orders": sum(r["channel"] == "web" for r in rs),
                "instore_orders": sum(r["channel"] == "pos_in_store" for r in rs),
                "segment": segment(ltv, len(rs)),
            }
        )
    return sorted(
        out,
        key=lambda r: (-r["lifetime_value"], r["customer_id"], nulls_last(r["customer_tier"])),
    )


def is_flagged(r: Row) -> bool:
    return r["is_fraudulent"] is True or (r["fraud_score"] is not None and r["fraud_score"] > 0.7)


def ref_fraud_analysis(rows: list[Row]) -> list[dict[str, Any]]:
    keys = ("category", "region", "channel", "payment_method")
    out = [
        {
            **dict(zip(keys, k, strict=True)),
            "fraud_count": len(rs),
            "fraud_total_amount": total(rs),
            "avg_fraud_score": mean(r["fraud_score"] for r in rs),
            "avg_fraud_amount": total(rs) / len(rs),
            "affected_customers": distinct(rs, "customer_id"),
            "affected_cities": sorted({r["city"] for r in rs}),
        }
        for k, rs in group([r for r in rows if is_flagged(r)], *keys).items()
    ]
    return sorted(out, key=lambda r: (-r["fraud_count"], *(r[k] for k in keys)))


def ref_hourly_trends(rows: list[Row]) -> list[dict[str, Any]]:
    by_hour: dict[tuple[date, int], list[Row]] = defaultdict(list)
    for r in completed(rows):
        ts = r["event_timestamp"]  # aware UTC, like the session time zone
        by_hour[(ts.date(), ts.hour)].append(r)
    return [
        {
            "event_date": d,
            "event_hour": h,
            "transaction_count": len(rs),
            "hourly_revenue": total(rs),
            "avg_order_value": total(rs) / len(rs),
            "unique_customers": distinct(rs, "customer_id"),
            "units_sold": sum(r["quantity"] for r in rs),
        }
        for (d, h), rs in sorted(by_hour.items())
    ]


def ref_channel_performance(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for (channel,), rs in group(completed(rows), "channel").items():
        fraud = sum(r["is_fraudulent"] is True for r in rs)
        out.append(
            {
                "channel": channel,
                "transaction_count": len(rs),
                "total_revenue": total(rs),
                "avg_order_value": total(rs) / len(rs),
                "unique_customers": distinct(rs, "customer_id"),
                "avg_discount": mean(r["discount_percent"] for r in rs),
                "fraud_count": fraud,
                "avg_fraud_score": mean(r["fraud_score"] for r in rs),
                # Integer inputs: the same IEEE operations as Spark, so exact.
                "fraud_rate_pct": half_up(fraud / len(rs) * 100, 4),
            }
        )
    return sorted(out, key=lambda r: (-r["total_revenue"], r["channel"]))


def ref_inventory_velocity(rows: list[Row]) -> list[dict[str, Any]]:
    keys = ("product_id", "product_name", "category", "sub_category", "brand")
    out = []
    for k, rs in group(completed(rows), *keys).items():
        first = min(r["event_timestamp"] for r in rs)
        last = max(r["event_timestamp"] for r in rs)
        units = sum(r["quantity"] for r in rs)
        days = (last.date() - first.date()).days + 1
        out.append(
            {
                **dict(zip(keys, k, strict=True)),
                "total_units_sold": units,
                "order_count": len(rs),
                "total_revenue": total(rs),
                "avg_selling_price": mean(r["unit_price"] for r in rs),
                "avg_discount": mean(r["discount_percent"] for r in rs),
                "regions_sold_in": distinct(rs, "region"),
                "stores_sold_in": distinct(rs, "store_id"),
                "first_sale": first,
                "last_sale": last,
                "days_in_range": days,
                "daily_velocity": half_up(units / days, 2),
            }
        )
    return sorted(out, key=lambda r: (-r["daily_velocity"], *(nulls_last(r[k]) for k in keys)))


REFERENCES: dict[str, Callable[[list[Row]], list[dict[str, Any]]]] = {
    "revenue_by_category": ref_revenue_by_category,
    "revenue_by_region": ref_revenue_by_region,
    "payment_analysis": ref_payment_analysis,
    "customer_segmentation": ref_customer_segmentation,
    "fraud_analysis": ref_fraud_analysis,
    "hourly_trends": ref_hourly_trends,
    "channel_performance": ref_channel_performance,
    "inventory_velocity": ref_inventory_velocity,
}


# ---------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def results(transactions: DataFrame) -> dict[str, list[dict[str, Any]]]:
    return {name: collect(fn(transactions)) for name, fn in ANALYSES.items()}


@pytest.mark.parametrize("name", EIGHT)
def test_matches_reference(
    name: str, rows: list[Row], results: dict[str, list[dict[str, Any]]]
) -> None:
    expected = REFERENCES[name](rows)
    assert expected, "the fixture rows must produce output for every analysis"
    assert_rows(results[name], expected)


@pytest.mark.parametrize("name", EIGHT)
def test_schema_matches_output_columns(name: str, transactions: DataFrame) -> None:
    schema = ANALYSES[name](transactions).schema
    actual = [(f.name, f.dataType.simpleString()) for f in schema.fields]
    assert actual == [(c, t) for c, t, _ in OUTPUT_COLUMNS[name]]


@pytest.mark.parametrize("name", EIGHT)
def test_docstring_lists_every_output_column(name: str) -> None:
    doc = ANALYSES[name].__doc__ or ""
    assert "Output columns:" in doc
    for column, spark_type, _ in OUTPUT_COLUMNS[name]:
        assert column in doc and spark_type in doc


def test_fixture_covers_the_interesting_cases(
    rows: list[Row], results: dict[str, list[dict[str, Any]]]
) -> None:
    # Guards the test data itself: without these the comparisons above prove less.
    assert {r["transaction_status"] for r in rows} == {
        "completed",
        "pending",
        "failed",
        "refunded",
        "chargeback",
    }
    segments = {r["segment"] for r in results["customer_segmentation"]}
    assert segments == {"vip", "high_value", "mid_value", "one_time", "low_value"}
    assert any(r["card_network"] is None for r in results["payment_analysis"])
    assert any(r["avg_fraud_score"] is None for r in results["fraud_analysis"])
    assert any(len(r["affected_cities"]) > 1 for r in results["fraud_analysis"])
    tiers = [
        r["customer_tier"]
        for r in results["customer_segmentation"]
        if r["customer_id"] == "TWO-TIER"
    ]
    assert sorted(tiers) == ["gold", "silver"]
    one_day = [r for r in results["inventory_velocity"] if r["product_id"] == ONE_DAY_PRODUCT]
    assert len(one_day) == 1
    assert one_day[0]["days_in_range"] == 1
    assert one_day[0]["daily_velocity"] == one_day[0]["total_units_sold"] == 2 + 3 + 4
    assert len({r["event_date"] for r in results["hourly_trends"]}) == 4


def test_fraud_filter_edges(rows: list[Row], results: dict[str, list[dict[str, Any]]]) -> None:
    # south/web/upi rows of SKU-002 (clothing) include: label only, score 0.95 only,
    # score exactly 0.7 with label false (not fraud), score 0.71 (fraud).
    edge = [
        r
        for r in rows
        if r["channel"] == "web"
        and r["payment_method"] == "upi"
        and r["region"] == "south"
        and r["product_id"] == "SKU-002"
    ]
    assert sum(is_flagged(r) for r in edge) >= 3
    assert any(r["fraud_score"] == 0.7 and not is_flagged(r) for r in edge)


def test_analyses_are_lazy(spark: SparkSession, transactions: DataFrame) -> None:
    # The batch runner decides when work runs (pool, job tag): building a plan must not
    # start any Spark job.
    sc = spark.sparkContext
    sc.setJobGroup("analytics-laziness", "plans only")
    try:
        for fn in ANALYSES.values():
            assert isinstance(fn(transactions), DataFrame)
        assert list(sc.statusTracker().getJobIdsForGroup("analytics-laziness")) == []
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]


def test_registry_and_full_report() -> None:
    assert {
        "revenue_by_category": revenue_by_category,
        "revenue_by_region": revenue_by_region,
        "payment_analysis": payment_analysis,
        "customer_segmentation": customer_segmentation,
        "fraud_analysis": fraud_analysis,
        "hourly_trends": hourly_trends,
        "channel_performance": channel_performance,
        "inventory_velocity": inventory_velocity,
    } == ANALYSES
    assert list(ANALYSES) == EIGHT
    assert FULL_REPORT == "full_report"
    assert analyses_for(FULL_REPORT) == EIGHT
    assert analyses_for("full_report") is not analyses_for("full_report")  # fresh lists
    for name in EIGHT:
        assert analyses_for(name) == [name]
    assert set(ANALYSIS_TYPES) == {*EIGHT, FULL_REPORT}
    with pytest.raises(KeyError):
        analyses_for("realtime_dashboard")
    with pytest.raises(KeyError):
        analyses_for("no_such_analysis")
    assert set(OUTPUT_COLUMNS) == {*EIGHT, "realtime_dashboard"}


def test_empty_input(transactions: DataFrame) -> None:
    empty = transactions.limit(0)
    for name, fn in ANALYSES.items():
        assert fn(empty).collect() == [], name
