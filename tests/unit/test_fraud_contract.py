"""The fraud contract: levels at their floors, the alert message's round trip, the rule
set's settings and the `--level` option."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts.fraud import FraudAlert, RiskLevel, Rule, alert_id, risk_level
from contracts.fraud_examples import fraud_alert_examples
from contracts.settings import Settings
from producers.cli_fraud import parse_level
from worker.fraud.rules import FraudRules


@pytest.mark.parametrize(("score", "level"), [
    (0, "MINIMAL"), (9, "MINIMAL"), (10, "LOW"), (24, "LOW"), (25, "MEDIUM"), (49, "MEDIUM"),
    (50, "HIGH"), (74, "HIGH"), (75, "CRITICAL"), (170, "CRITICAL")])
def test_risk_level_floors(score: int, level: str) -> None:
    assert risk_level(score) is RiskLevel(level)


def test_alert_round_trip() -> None:
    alert = FraudAlert(
        alert_id=alert_id("t-1", RiskLevel.CRITICAL), transaction_id="t-1", customer_id="c-1",
        score=90, risk_level=RiskLevel.CRITICAL, previous_level=RiskLevel.HIGH,
        reasons=[Rule.HIGH_AMOUNT, Rule.VELOCITY], velocity_count=6, total_amount=5000.01,
        event_timestamp=datetime(2025, 1, 15, 23, 0, tzinfo=UTC),
        alerted_at=datetime(2025, 1, 15, 23, 0, 5, tzinfo=UTC))
    assert alert.alert_id == "t-1:CRITICAL"
    again = FraudAlert.model_validate_json(alert.model_dump_json())
    assert again == alert
    assert again.model_score is None and again.model_version is None
    for _, _, message in fraud_alert_examples():
        assert FraudAlert.model_validate(message).model_dump(mode="json") == message


def test_rules_from_settings() -> None:
    rules = FraudRules.from_settings(Settings(fraud_high_amount=100, fraud_risky_regions=["a"],
                                              fraud_velocity_max=3))
    assert (rules.high_amount, rules.risky_regions, rules.velocity_max) == (100, ("a",), 3)
    assert FraudRules.from_settings(Settings()) == FraudRules()
    night = FraudRules()
    assert [h for h in range(24) if night.is_night(h)] == [0, 1, 2, 3, 4, 23]


def test_level_option() -> None:
    assert parse_level(None) is None
    assert parse_level("high") is RiskLevel.HIGH
    assert parse_level("CRITICAL") is RiskLevel.CRITICAL
    for bad in ("LOW", "severe"):
        with pytest.raises(ValueError, match="HIGH"):
            parse_level(bad)
