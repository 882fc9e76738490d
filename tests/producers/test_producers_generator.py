"""The transaction generator: contract validity, docs/generator.md distributions, determinism."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import orjson
import pytest

from contracts.errors import ContractError
from contracts.spark_schema import FIELD_RULES
from contracts.transaction import TRANSACTION_FIELDS, TransactionEvent
from producers.generator import (
    CATEGORIES,
    CHANNEL_WEIGHTS,
    CURRENCY,
    HOUR_WEIGHTS,
    INVALID_KINDS,
    PAYMENT_WEIGHTS,
    REGIONS,
    STATUS_WEIGHTS,
    TIER_WEIGHTS,
    TransactionGenerator,
    rate_multiplier,
)
from producers.generator_fraud import FRAUD_NIGHT_HOURS, FRAUD_PAYMENT_WEIGHTS

N = 50_000
AT = datetime(2025, 1, 15, 14, 32, 7, 123000, tzinfo=UTC)
END = datetime(2025, 3, 1, tzinfo=UTC)
DIGITAL = {"web", "mobile_app", "marketplace"}
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    # 14:32 to 21:29 UTC: by day, where fraud is rarest (docs/generator.md#fraud).
    gen = TransactionGenerator(seed=42)
    return [gen.event(at=AT + timedelta(milliseconds=500 * i)) for i in range(N)]


def assert_mix(observed: Counter[str], expected: Mapping[Any, float], n: int) -> None:
    """Each share within 5 binomial standard deviations of its weight (+ a hair for pools)."""
    assert set(observed) <= {str(k) for k in expected}
    total = sum(expected.values())
    for key, weight in expected.items():
        p = weight / total
        tolerance = 5 * math.sqrt(p * (1 - p) / n) + 0.002
        share = observed[str(key)] / n
        assert abs(share - p) <= tolerance, f"{key}: {share:.4f} vs {p:.4f} ± {tolerance:.4f}"


# ------------------------------------------------------------------------------ contract


def test_every_event_validates_and_has_the_31_fields(events: list[dict[str, Any]]) -> None:
    for event in events:
        assert tuple(event) == TRANSACTION_FIELDS
        TransactionEvent.model_validate(event)
    for event in events[:2000]:  # and through the wire format the stream actually sees
        assert TransactionEvent.decode(orjson.dumps(event)).to_json_dict() == event


def test_stream_fields_left_for_the_pipeline(events: list[dict[str, Any]]) -> None:
    assert all(e["processing_timestamp"] is None and e["batch_id"] is None for e in events)
    assert all(ISO_Z.match(e["event_timestamp"]) for e in events)
    assert events[0]["event_timestamp"] == "2025-01-15T14:32:07.123Z"
    assert {e["currency"] for e in events} == {CURRENCY}


def test_identifier_formats(events: list[dict[str, Any]]) -> None:
    uuid4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    for e in events:
        assert uuid4.match(e["transaction_id"])
        assert re.match(r"^CUST-\d{8}$", e["customer_id"])
        assert re.match(r"^SKU-[A-Z]{3}-\d{5}$", e["product_id"])
        assert e["store_id"] is None or re.match(r"^STORE-[A-Z]{3}-\d{3}$", e["store_id"])
        assert e["session_id"] is None or re.match(r"^sess-[0-9a-f]{12}$", e["session_id"])
        assert e["ip_address"] is None or re.match(r"^\d{1,3}\.\d{1,3}\.xxx\.xxx$",
                                                   e["ip_address"])
        assert re.match(r"^\d{6}$", e["postal_code"])
    assert len({e["transaction_id"] for e in events}) == N


# ------------------------------------------------------------------------------ distributions


def test_categorical_mixes_follow_the_seed(events: list[dict[str, Any]]) -> None:
    def count(field: str) -> Counter[str]:
        return Counter(e[field] for e in events)

    assert_mix(count("category"), {c: s.weight for c, s in CATEGORIES.items()}, N)
    assert_mix(count("payment_method"), PAYMENT_WEIGHTS, N)
    assert_mix(count("channel"), CHANNEL_WEIGHTS, N)
    assert_mix(count("transaction_status"), STATUS_WEIGHTS, N)
    assert_mix(count("customer_tier"), TIER_WEIGHTS, N)
    assert_mix(count("region"), {r: s.weight for r, s in REGIONS.items()}, N)


def test_quantity_70_20_10(events: list[dict[str, Any]]) -> None:
    quantities = Counter(e["quantity"] for e in events)
    assert set(quantities) == {1, 2, 3, 4, 5}
    assert_mix(Counter({"1": quantities[1], "2": quantities[2],
                        "3-5": quantities[3] + quantities[4] + quantities[5]}),
               {"1": 0.7, "2": 0.2, "3-5": 0.1}, N)


def test_discount_buckets_60_30_10(events: list[dict[str, Any]]) -> None:
    def bucket(d: float) -> str:
        if d == 0:
            return "none"
        if 5 <= d <= 15:
            return "5-15"
        assert 20 <= d <= 50, d
        return "20-50"

    assert_mix(Counter(bucket(e["discount_percent"]) for e in events),
               {"none": 0.6, "5-15": 0.3, "20-50": 0.1}, N)


def test_totals_and_tax_formula(events: list[dict[str, Any]]) -> None:
    for e in events:
        expected = round(e["quantity"] * e["unit_price"] * (1 - e["discount_percent"] / 100), 2)
        assert e["total_amount"] == expected
        assert e["tax_amount"] == round(e["total_amount"] * 0.09, 2)


def test_prices_within_category_range_and_products_consistent(
        events: list[dict[str, Any]]) -> None:
    catalogue: dict[str, tuple[Any, ...]] = {}
    for e in events:
        lo, hi = CATEGORIES[e["category"]].price_range
        assert lo <= e["unit_price"] <= hi
        assert e["sub_category"] in CATEGORIES[e["category"]].sub_cats
        product = (e["product_name"], e["category"], e["sub_category"], e["brand"],
                   e["unit_price"])
        assert catalogue.setdefault(e["product_id"], product) == product
    assert 400 <= len(catalogue) <= 500  # nearly every product of the 500 is sold


def test_fraud_scores(events: list[dict[str, Any]]) -> None:
    fraud = [e for e in events if e["is_fraudulent"]]
    assert fraud
    assert all(0.7 <= e["fraud_score"] <= 1.0 for e in fraud)
    assert all(e["is_fraudulent"] is False and 0.0 <= e["fraud_score"] <= 0.15
               for e in events if not e["is_fraudulent"])


def test_fraud_rate_over_a_days_traffic(history: list[dict[str, Any]]) -> None:
    # The rate holds over the hours as history weights them; by day it is lower and at
    # night higher (FRAUD_NIGHT_FACTOR).
    fraud = sum(e["is_fraudulent"] for e in history)
    assert_mix(Counter({"fraud": fraud, "ok": N - fraud}), {"fraud": 0.02, "ok": 0.98}, N)


def test_fraud_rate_is_configurable() -> None:
    gen = TransactionGenerator(seed=1, fraud_rate=0.2)
    evs = list(gen.history(20_000, 30, END))
    share = sum(e["is_fraudulent"] for e in evs) / len(evs)
    assert 0.17 < share < 0.23


def test_card_network_only_for_cards(events: list[dict[str, Any]]) -> None:
    for e in events:
        if e["payment_method"] in ("credit_card", "debit_card"):
            assert e["card_network"] is not None
        else:
            assert e["card_network"] is None


def test_channel_dependent_fields(events: list[dict[str, Any]]) -> None:
    for e in events:
        digital = e["channel"] in DIGITAL
        assert (e["store_id"] is None) == digital  # no store for online channels
        assert (e["device_type"] is not None) == digital  # no device in a store
        assert (e["session_id"] is not None) == digital
        if e["channel"] == "mobile_app":
            assert e["device_type"] in ("android", "ios")


def test_places_are_consistent(events: list[dict[str, Any]]) -> None:
    cities = {(region.value, city.name): city for region, spec in REGIONS.items()
              for city in spec.cities}
    stores: dict[str, tuple[str, str]] = {}
    for e in events:
        city = cities[(e["region"], e["city"])]
        assert e["state"] == city.state
        assert e["postal_code"].startswith(city.postal_prefix)
        if e["store_id"]:
            assert e["store_id"].split("-")[1] == city.store_code
            assert stores.setdefault(e["store_id"], (e["region"], e["city"])) == (
                e["region"], e["city"])
    assert len(stores) == 50


# ------------------------------------------------------------------------------ determinism


def test_same_seed_same_events() -> None:
    a, b = TransactionGenerator(seed=7), TransactionGenerator(seed=7)
    assert [a.event(at=AT) for _ in range(200)] == [b.event(at=AT) for _ in range(200)]
    assert list(a.history(500, 30, END)) == list(b.history(500, 30, END))
    assert [a.invalid(AT) for _ in range(50)] == [b.invalid(AT) for _ in range(50)]


def test_different_seeds_share_the_catalogue_but_not_the_traffic() -> None:
    a, b = TransactionGenerator(seed=1), TransactionGenerator(seed=2)
    ea = [a.event(at=AT) for _ in range(3000)]
    eb = [b.event(at=AT) for _ in range(3000)]
    assert [e["transaction_id"] for e in ea] != [e["transaction_id"] for e in eb]
    # The seeder and the live generator draw from the same customers/products.
    products_a = {e["product_id"]: e["product_name"] for e in ea}
    products_b = {e["product_id"]: e["product_name"] for e in eb}
    common = products_a.keys() & products_b.keys()
    assert len(common) > 100
    assert all(products_a[p] == products_b[p] for p in common)
    other_pool = TransactionGenerator(seed=1, pool_seed=99).event(at=AT)
    assert other_pool["customer_id"] != ea[0]["customer_id"]


def test_pool_sizes_are_configurable() -> None:
    gen = TransactionGenerator(seed=3, num_customers=10, num_products=12, num_stores=3)
    evs = [gen.event(at=AT) for _ in range(3000)]
    assert len({e["customer_id"] for e in evs}) == 10
    assert len({e["product_id"] for e in evs}) <= 12
    assert len({e["store_id"] for e in evs} - {None}) <= 3
    for e in evs:
        TransactionEvent.model_validate(e)


def test_live_events_are_stamped_now() -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    evs = list(TransactionGenerator(seed=5).events(100))
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert len(evs) == 100
    for e in evs:
        assert before <= TransactionEvent.model_validate(e).event_timestamp <= after


# ------------------------------------------------------------------------------ history


@pytest.fixture(scope="module")
def history() -> list[dict[str, Any]]:
    return list(TransactionGenerator(seed=11).history(N, 90, END))


def test_history_spans_the_window_in_order(history: list[dict[str, Any]]) -> None:
    assert len(history) == N
    stamps = [e["event_timestamp"] for e in history]
    assert stamps == sorted(stamps)  # ISO-8601 Z strings sort chronologically
    first = TransactionEvent.model_validate(history[0]).event_timestamp
    last = TransactionEvent.model_validate(history[-1]).event_timestamp
    assert END - timedelta(days=90) <= first < END - timedelta(days=89)
    assert END - timedelta(days=1) < last < END
    assert len({s[:10] for s in stamps}) == 90
    for e in history[:: N // 500]:
        TransactionEvent.model_validate(e)


def test_history_weighted_toward_business_hours(history: list[dict[str, Any]]) -> None:
    hours = Counter(int(e["event_timestamp"][11:13]) for e in history)
    business = sum(hours[h] for h in range(8, 22)) / N
    expected = sum(HOUR_WEIGHTS[8:22]) / sum(HOUR_WEIGHTS)
    assert abs(business - expected) < 0.01
    assert business > 0.8
    assert min(hours[h] for h in range(10, 21)) > 3 * max(hours[h] for h in range(0, 5))


def test_history_seasonality_weekend_vs_weekday(history: list[dict[str, Any]]) -> None:
    def shares(weekend: bool) -> dict[str, float]:
        cats = Counter(e["category"] for e in history
                       if (datetime.fromisoformat(e["event_timestamp"]).weekday() >= 5)
                       == weekend)
        total = sum(cats.values())
        return {c: n / total for c, n in cats.items()}

    weekend, weekday = shares(True), shares(False)
    # Boosted weights renormalised: grocery 0.308/1.16 vs 0.22/1.06 -> ratio ~1.28;
    # electronics 0.20/1.16 vs 0.26/1.06 -> ratio ~0.70.
    assert 1.15 < weekend["grocery"] / weekday["grocery"] < 1.42
    assert 1.15 < weekend["clothing"] / weekday["clothing"] < 1.42
    assert 0.6 < weekend["electronics"] / weekday["electronics"] < 0.8
    assert 0.85 < weekend["books"] / weekday["books"] < 1.0  # unboosted: diluted on weekends


def test_history_hours_follow_the_given_zone() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    stamps = list(TransactionGenerator(seed=2).history_timestamps(20_000, 30, END, tz=ist))
    assert all(END - timedelta(days=30) <= s < END for s in stamps)
    local_hours = Counter(s.astimezone(ist).hour for s in stamps)
    assert sum(local_hours[h] for h in range(8, 22)) / len(stamps) > 0.8


def test_fraud_patterns_are_learnable(history: list[dict[str, Any]]) -> None:
    """docs/generator.md#fraud: each pattern is much more common among fraud, yet not
    exclusive to it."""
    fraud = [e for e in history if e["is_fraudulent"]]
    legit = [e for e in history if not e["is_fraudulent"]]

    def share(rows: list[dict[str, Any]], test: Any) -> float:
        return sum(1 for e in rows if test(e)) / len(rows)

    patterns = {
        "gift_card": lambda e: e["payment_method"] == "gift_card",
        "electronics": lambda e: e["category"] == "electronics",
        "night": lambda e: int(e["event_timestamp"][11:13]) in FRAUD_NIGHT_HOURS,
        "3+ items": lambda e: e["quantity"] >= 3,
        "over 1000": lambda e: e["total_amount"] > 1000,
    }
    for name, test in patterns.items():
        assert share(fraud, test) > 2 * share(legit, test) > 0, name
    # Bursts: a fraudulent record often follows the same customer's fraudulent record.
    follows = sum(1 for a, b in pairwise(history)
                  if b["is_fraudulent"] and a["is_fraudulent"]
                  and a["customer_id"] == b["customer_id"])
    assert 0.4 < follows / len(fraud) < 0.8
    assert share(fraud, lambda e: e["payment_method"] == "gift_card") < 0.5


def test_fraud_mixes_are_carved_from_the_documented_ones(history: list[dict[str, Any]],
                                                         ) -> None:
    # Legitimate records draw the overall mix minus fraud's share: together they follow it.
    assert_mix(Counter(e["payment_method"] for e in history), PAYMENT_WEIGHTS, N)
    assert_mix(Counter(e["payment_method"] for e in history if not e["is_fraudulent"]),
               {p: w - 0.02 * FRAUD_PAYMENT_WEIGHTS[p] for p, w in PAYMENT_WEIGHTS.items()},
               N)


def test_history_of_nothing() -> None:
    assert list(TransactionGenerator(seed=1).history(0, 5, END)) == []


def test_rate_multiplier_averages_one() -> None:
    assert sum(rate_multiplier(h) for h in range(24)) / 24 == pytest.approx(1.0)
    assert rate_multiplier(19) > 1.5 > 0.2 > rate_multiplier(3)


# ------------------------------------------------------------------------------ invalid


def _stream_rules_reject(raw: bytes) -> bool:
    """Mimic the stream's FIELD_RULES checks (types, required, enums, ranges, patterns)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return True
    if not isinstance(obj, dict):
        return True
    types = {"string": str, "integer": int, "double": (int, float), "boolean": bool}
    for rule in FIELD_RULES:
        value = obj.get(rule.name)
        if value is None:
            if rule.required:
                return True
            continue
        if rule.spark_type == "timestamp":
            try:
                datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                return True
            continue
        if isinstance(value, bool) and rule.spark_type != "boolean":
            return True
        if not isinstance(value, types[rule.spark_type]):
            return True
        if rule.allowed and value not in rule.allowed:
            return True
        if (rule.ge is not None and value < rule.ge) or (rule.le is not None and value > rule.le):
            return True
        if rule.pattern and not re.match(rule.pattern, value):
            return True
        if rule.min_length and len(value) < rule.min_length:
            return True
    return False


@pytest.mark.parametrize("kind", INVALID_KINDS)
def test_every_invalid_kind_is_rejected(kind: str) -> None:
    gen = TransactionGenerator(seed=INVALID_KINDS.index(kind))
    for _ in range(60):
        key, raw, got = gen.invalid_record(kind)
        assert got == kind and isinstance(raw, bytes) and key
        with pytest.raises(ContractError):
            TransactionEvent.decode(raw)
        assert _stream_rules_reject(raw), raw  # the Spark-side rules agree


def test_valid_events_pass_the_stream_rules(events: list[dict[str, Any]]) -> None:
    assert not any(_stream_rules_reject(orjson.dumps(e)) for e in events[:5000])


def test_invalid_picks_every_kind() -> None:
    gen = TransactionGenerator(seed=9)
    kinds = Counter(gen.invalid()[1] for _ in range(1200))
    assert set(kinds) == set(INVALID_KINDS)


def test_unknown_invalid_kind() -> None:
    with pytest.raises(ValueError, match="unknown invalid kind"):
        TransactionGenerator(seed=1).invalid_record("gremlins")
