"""The fraud rules as Spark column expressions (docs/fraud-detection.md).

Each rule is a boolean over one silver row (and its velocity count); the score is the sum
of the points of the rules that fire, the level follows from the score
(`contracts.fraud.risk_level`), and `reasons` names the fired rules in `Rule` order.
Times are the UTC `event_timestamp` (the Spark session time zone is UTC), computed here
rather than taken from silver's `event_hour`/`is_weekend` so that the rules depend on
the contract columns alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from contracts.fraud import LEVEL_FLOORS, RULE_POINTS, RiskLevel, Rule
from contracts.settings import Settings
from worker.fraud.velocity import VELOCITY_COUNT, with_velocity

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

SCORE, RISK_LEVEL, REASONS = "score", "risk_level", "reasons"


@dataclass(frozen=True)
class FraudRules:
    """The rules' thresholds and sets (PIPELINE_FRAUD_* settings)."""

    high_amount: float = 5000.0
    risky_payment_methods: tuple[str, ...] = ("gift_card",)
    risky_regions: tuple[str, ...] = ("northeast",)
    night_start_hour: int = 23
    night_end_hour: int = 5
    velocity_minutes: float = 30.0
    velocity_max: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> FraudRules:
        return cls(
            high_amount=settings.fraud_high_amount,
            risky_payment_methods=tuple(settings.fraud_risky_payment_methods),
            risky_regions=tuple(settings.fraud_risky_regions),
            night_start_hour=settings.fraud_night_start_hour,
            night_end_hour=settings.fraud_night_end_hour,
            velocity_minutes=settings.fraud_velocity_minutes,
            velocity_max=settings.fraud_velocity_max,
        )

    @property
    def velocity_window(self) -> timedelta:
        return timedelta(minutes=self.velocity_minutes)

    def is_night(self, hour: int) -> bool:
        """The night rule on one hour (the reference of the Spark expression)."""
        if self.night_start_hour > self.night_end_hour:  # wraps past midnight (23 -> 5)
            return hour >= self.night_start_hour or hour < self.night_end_hour
        return self.night_start_hour <= hour < self.night_end_hour


def rule_conditions(rules: FraudRules) -> dict[Rule, Column]:
    """Each rule as a non-null boolean column over a frame that has `velocity_count`."""
    from pyspark.sql import functions as F

    hour = F.hour(F.col("event_timestamp"))
    if rules.night_start_hour > rules.night_end_hour:
        night = (hour >= rules.night_start_hour) | (hour < rules.night_end_hour)
    else:
        night = (hour >= rules.night_start_hour) & (hour < rules.night_end_hour)
    conditions = {
        Rule.KNOWN_FRAUD: F.col("is_fraudulent") == F.lit(True),
        Rule.HIGH_AMOUNT: F.col("total_amount") > F.lit(float(rules.high_amount)),
        Rule.RISKY_PAYMENT: F.col("payment_method").isin(list(rules.risky_payment_methods)),
        Rule.RISKY_REGION: F.col("region").isin(list(rules.risky_regions)),
        Rule.NIGHT: night,
        # Spark's dayofweek: 1 = Sunday, 7 = Saturday.
        Rule.WEEKEND: F.dayofweek(F.col("event_timestamp")).isin(1, 7),
        Rule.VELOCITY: F.col(VELOCITY_COUNT) > F.lit(rules.velocity_max),
    }
    # A null field (no region, say) does not fire its rule.
    return {rule: F.coalesce(cond, F.lit(False)) for rule, cond in conditions.items()}


def level_of(score: Column) -> Column:
    """`contracts.fraud.risk_level` as a column."""
    from pyspark.sql import functions as F

    level = F.lit(RiskLevel.MINIMAL.value)
    for name, floor in reversed(LEVEL_FLOORS):  # lowest first: the highest floor wins
        level = F.when(score >= F.lit(floor), F.lit(name.value)).otherwise(level)
    return level


def score_frame(frame: DataFrame, rules: FraudRules) -> DataFrame:
    """`frame` (silver rows) with `velocity_count`, `score`, `risk_level` and `reasons`.

    Velocity counts the rows of `frame` itself, so `frame` must hold every row of the
    velocity window before each row it is meant to score."""
    from pyspark.sql import functions as F

    scored = with_velocity(frame, rules.velocity_minutes)
    conditions = rule_conditions(rules)
    score = sum((F.when(cond, F.lit(RULE_POINTS[rule])).otherwise(F.lit(0))
                 for rule, cond in conditions.items()), F.lit(0))
    reasons = F.array_compact(F.array(*[
        F.when(cond, F.lit(rule.value)) for rule, cond in conditions.items()]))
    return (scored.withColumn(SCORE, score.cast("int"))
            .withColumn(RISK_LEVEL, level_of(F.col(SCORE)))
            .withColumn(REASONS, reasons))
