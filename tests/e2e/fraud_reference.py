"""The fraud rules computed independently in plain Python from silver rows, to compare with
what the worker wrote to gold.fraud_scores (the definition: README.md#fraud-detection)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

WINDOW = timedelta(minutes=30)


def _utc(value: Any) -> datetime:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def expected_scores(silver: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """transaction_id -> {score, risk_level, reasons, velocity_count}."""
    rows = silver.to_dict("records")
    by_customer: dict[str, list[datetime]] = defaultdict(list)
    for row in rows:
        by_customer[row["customer_id"]].append(_utc(row["event_timestamp"]))
    out = {}
    for row in rows:
        t = _utc(row["event_timestamp"])
        velocity = sum(1 for other in by_customer[row["customer_id"]] if t - WINDOW < other <= t)
        fired = []
        if row["is_fraudulent"]:
            fired.append(("known_fraud", 50))
        if row["total_amount"] > 5000:
            fired.append(("high_amount", 30))
        if row["payment_method"] == "gift_card":
            fired.append(("risky_payment", 20))
        if row["region"] == "northeast":
            fired.append(("risky_region", 15))
        if t.hour >= 23 or t.hour < 5:
            fired.append(("night", 10))
        if t.astimezone(UTC).isoweekday() >= 6:
            fired.append(("weekend", 5))
        if velocity > 5:
            fired.append(("velocity", 25))
        score = sum(points for _, points in fired)
        level = ("CRITICAL" if score >= 75 else "HIGH" if score >= 50 else "MEDIUM"
                 if score >= 25 else "LOW" if score >= 10 else "MINIMAL")
        out[row["transaction_id"]] = {"score": score, "risk_level": level,
                                      "reasons": [name for name, _ in fired],
                                      "velocity_count": velocity}
    return out


def actual_scores(scores: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["transaction_id"]: {"score": int(row["score"]),
                                    "risk_level": row["risk_level"],
                                    "reasons": list(row["reasons"]),
                                    "velocity_count": int(row["velocity_count"])}
            for row in scores.to_dict("records")}
