"""Fraud detection's contract: risk levels, rule names, the `fraud-alerts` message and what a
trained model reports (README.md#fraud-detection).

Pure: the worker scores and publishes with these, `pipeline fraud alerts` and any consumer
read with them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class RiskLevel(StrEnum):
    MINIMAL = "MINIMAL"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


# Lowest score of each level, highest level first.
LEVEL_FLOORS: tuple[tuple[RiskLevel, int], ...] = (
    (RiskLevel.CRITICAL, 75), (RiskLevel.HIGH, 50), (RiskLevel.MEDIUM, 25),
    (RiskLevel.LOW, 10),
)
LEVEL_RANK: dict[RiskLevel, int] = {level: rank for rank, level in enumerate(RiskLevel)}
ALERT_LEVELS: frozenset[RiskLevel] = frozenset({RiskLevel.HIGH, RiskLevel.CRITICAL})


def risk_level(score: int) -> RiskLevel:
    for level, floor in LEVEL_FLOORS:
        if score >= floor:
            return level
    return RiskLevel.MINIMAL


class Rule(StrEnum):
    """The rules' names as they appear in `reasons`, in the order they are listed."""

    KNOWN_FRAUD = "known_fraud"
    HIGH_AMOUNT = "high_amount"
    RISKY_PAYMENT = "risky_payment"
    RISKY_REGION = "risky_region"
    NIGHT = "night"
    WEEKEND = "weekend"
    VELOCITY = "velocity"


RULE_POINTS: dict[Rule, int] = {
    Rule.KNOWN_FRAUD: 50, Rule.HIGH_AMOUNT: 30, Rule.RISKY_PAYMENT: 20,
    Rule.RISKY_REGION: 15, Rule.NIGHT: 10, Rule.WEEKEND: 5, Rule.VELOCITY: 25,
}


class FraudAlert(BaseModel):
    """One message on the `fraud-alerts` topic (key: `transaction_id`).

    A transaction is alerted when its level first reaches HIGH or CRITICAL, and again when
    late data raises it (HIGH -> CRITICAL). `alert_id` (`<transaction_id>:<risk_level>`)
    is the same for every copy of one alert: after a worker crash an alert may be sent
    twice, and a consumer drops the second by its `alert_id`.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    alert_id: str
    transaction_id: str
    customer_id: str
    score: int
    risk_level: RiskLevel
    previous_level: RiskLevel | None = Field(
        default=None, description="the level of this transaction's previous alert; null on "
                                  "its first alert")
    reasons: list[Rule]
    velocity_count: int
    total_amount: float
    event_timestamp: datetime
    model_score: float | None = None
    model_version: str | None = None
    alerted_at: datetime


def alert_id(transaction_id: str, level: RiskLevel | str) -> str:
    return f"{transaction_id}:{level}"


class ModelMetrics(BaseModel):
    """How a trained model did on its held-out split."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    area_under_roc: float
    area_under_pr: float
    precision: float
    recall: float
    threshold: float
    train_rows: int
    test_rows: int
    positives: int


class ModelInfo(BaseModel):
    """What `train_fraud_model` produced: carried by its `batch.completed`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: str
    path: str
    trained_from: str  # first event date used (inclusive)
    trained_to: str    # last event date used (inclusive)
    features: list[str]
    metrics: ModelMetrics
