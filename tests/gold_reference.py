"""The gold business tables computed independently in plain Python from silver rows
(docs/gold-tables.md), to compare with what the worker wrote: windows aligned to the
epoch, "online" for a null store, nulls never counted as distinct values, rates rounded
half-up, revenue 0 without completed transactions."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# (table, size, slide, keys)
TABLES = {
    "gold.store_activity": (timedelta(minutes=15), timedelta(minutes=5), ("store_id",)),
    "gold.customer_activity": (timedelta(hours=1), timedelta(hours=1), ("customer_id",)),
    "gold.region_activity": (timedelta(minutes=30), timedelta(minutes=30), ("region",)),
    "gold.hourly_summary": (timedelta(hours=1), timedelta(hours=1), ()),
}


def starts_of(at: datetime, size: timedelta, slide: timedelta) -> list[datetime]:
    """Every epoch-aligned window start whose [start, start + size) holds `at`."""
    offset = (at - EPOCH) % slide
    last = at - offset
    return [last - k * slide for k in range(size // slide)]


def rate(count: int, total: int) -> float:
    return float((Decimal(100 * count) / Decimal(total)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP))


def expected(table: str, rows: list[dict[str, Any]],
             scores: list[dict[str, Any]] | None) -> dict[tuple[Any, ...], dict[str, Any]]:
    size, slide, _ = TABLES[table]
    by_id = {s["transaction_id"]: s for s in scores or []}
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        key = {"gold.store_activity": (r["store_id"] or "online",),
               "gold.customer_activity": (r["customer_id"],),
               "gold.region_activity": (r["region"],),
               "gold.hourly_summary": ()}[table]
        for start in starts_of(r["event_timestamp"], size, slide):
            groups[(start, *key)].append(r)
    out = {}
    for key, g in groups.items():
        n = len(g)
        fraud = sum(1 for r in g if r["is_fraudulent"])
        m: dict[str, Any] = {
            "window_end": key[0] + size, "txn_count": n,
            "revenue": sum(r["total_amount"] for r in g
                           if r["transaction_status"] == "completed")}
        if table == "gold.store_activity":
            m.update(avg_value=sum(r["total_amount"] for r in g) / n, fraud_count=fraud,
                     fraud_rate_pct=rate(fraud, n),
                     unique_customers=len({r["customer_id"] for r in g} - {None}),
                     unique_sessions=len({r["session_id"] for r in g} - {None}))
        elif table == "gold.customer_activity":
            levels = [by_id[r["transaction_id"]] for r in g if r["transaction_id"] in by_id]
            high = sum(1 for s in levels if s["risk_level"] in ("HIGH", "CRITICAL"))
            m.update(distinct_stores=len({r["store_id"] for r in g} - {None}),
                     distinct_payment_methods=len({r["payment_method"] for r in g} - {None}),
                     high_risk_count=high,
                     suspicious=high > 0 or any("velocity" in s["reasons"] for s in levels))
        elif table == "gold.region_activity":
            m.update(fraud_rate_pct=rate(fraud, n),
                     active_customers=len({r["customer_id"] for r in g} - {None}),
                     active_stores=len({r["store_id"] for r in g} - {None}))
        else:
            methods: dict[str, int] = defaultdict(int)
            for r in g:
                if r["payment_method"] is not None:
                    methods[r["payment_method"]] += 1
            m.update(avg_value=sum(r["total_amount"] for r in g) / n,
                     fraud_rate_pct=rate(fraud, n),
                     high_value_rate_pct=rate(sum(1 for r in g if r["total_amount"] > 1000),
                                              n),
                     payment_method_counts=dict(methods))
        out[key] = m
    return out


def assert_matches(actual: dict[tuple[Any, ...], dict[str, Any]],
                   wanted: dict[tuple[Any, ...], dict[str, Any]]) -> None:
    assert sorted(actual) == sorted(wanted)
    for key, metrics in wanted.items():
        got = actual[key]
        for name, value in metrics.items():
            if isinstance(value, float) and not name.endswith("_pct"):
                assert math.isclose(got[name], value, rel_tol=1e-9), (key, name)
            else:  # counts, flags, maps and rates exactly
                assert got[name] == value, (key, name, got[name], value)




def keyed(table: str, rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """A gold table's rows (as delta-rs reads them: aware datetimes, maps as pairs) by
    (window_start, keys...), the shape `expected` returns."""
    out = {}
    for row in rows:
        row = dict(row)
        if isinstance(row.get("payment_method_counts"), list):
            row["payment_method_counts"] = dict(row["payment_method_counts"])
        out[(row.pop("window_start"), *(row.pop(k) for k in TABLES[table][2]))] = row
    return out
