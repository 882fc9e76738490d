"""Evaluating the expectations of one micro-batch without a pass of their own.

Row checks become sums inside the aggregate the micro-batch already runs (one job answers
the batch's counts and every expectation at once); `drop` checks become one column naming
the first failing expectation of a row, which routes that row to quarantine. What only the
silver write knows (the duplicates the dedupe removed) and what is a property of the whole
micro-batch (its volume) are filled in afterwards from numbers the batch has anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from worker.quality.expectations import Action, Check, Expectation

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# The parser's reason for a record without one of its required fields (completeness);
# every other reason is a breach of validity.
MISSING_FIELD_PREFIX = "missing required field"
_LAG = "_q_lag_seconds"


class ExpectationFailed(Exception):
    """A `fail` expectation found failing rows: the stream must stop."""


@dataclass(frozen=True)
class Outcome:
    """One expectation's result for one micro-batch."""

    expectation: Expectation
    rows_checked: int
    rows_failed: int
    metric: float | None

    @property
    def failure_rate(self) -> float:
        return self.rows_failed / self.rows_checked if self.rows_checked else 0.0

    @property
    def passed(self) -> bool:
        if self.expectation.action is Action.FAIL:
            return self.rows_failed == 0
        return self.failure_rate <= self.expectation.threshold

    def as_dict(self) -> dict[str, Any]:
        e = self.expectation
        return {"layer": e.layer, "expectation": e.name, "action": str(e.action),
                "rows_checked": self.rows_checked, "rows_failed": self.rows_failed,
                "metric": self.metric, "passed": self.passed}


class QualityChecks:
    def __init__(self, expectations: tuple[Expectation, ...]) -> None:
        self.expectations = expectations

    # ---- Spark expressions -------------------------------------------------------------

    def validate(self, frame: DataFrame) -> None:
        """Analyse every predicate against the record's columns (Spark raises on an unknown
        column or bad syntax); raises ValueError naming the expectation."""
        from pyspark.sql import functions as F

        for e in self.expectations:
            if e.predicate is None:
                continue
            try:
                frame.select(F.expr(e.predicate).cast("boolean")).limit(0).collect()
            except Exception as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise ValueError(f"expectation {e.name!r}: predicate {e.predicate!r} "
                                 f"cannot be evaluated: {first[:300]}") from None

    def with_lag(self, frame: DataFrame, ingested: str, event_ts: str) -> DataFrame:
        """Add the event-to-ingest lag in seconds when a freshness check needs it."""
        from pyspark.sql import functions as F

        if not any(e.check is Check.FRESHNESS for e in self.expectations):
            return frame
        lag = (F.unix_micros(F.col(ingested)) - F.unix_micros(F.col(event_ts))) / 1e6
        return frame.withColumn(_LAG, lag)

    def _row_failed(self, e: Expectation, valid: Column, reason: Column) -> Column:
        """True where this row check fails (among the rows it checks)."""
        from pyspark.sql import functions as F

        if e.check is Check.REQUIRED_FIELDS:
            return reason.startswith(MISSING_FIELD_PREFIX)
        if e.check is Check.CONTRACT:
            return reason.isNotNull() & ~reason.startswith(MISSING_FIELD_PREFIX)
        if e.check is Check.FRESHNESS:
            return valid & (F.col(_LAG) > F.lit(e.max_lag_seconds))
        assert e.predicate is not None
        return valid & ~F.coalesce(F.expr(e.predicate).cast("boolean"), F.lit(False))

    def aggregates(self, valid: Column, reason: Column) -> list[Column]:
        """Sums for the micro-batch's aggregate: per row check, its failing rows."""
        from pyspark.sql import functions as F

        out = []
        for i, e in enumerate(self.expectations):
            if e.check in (Check.UNIQUE_TRANSACTION_ID, Check.VOLUME):
                continue
            failed = self._row_failed(e, valid, reason)
            out.append(F.sum(F.when(failed, 1).otherwise(0)).alias(f"_q{i}_failed"))
            if e.check is Check.FRESHNESS:
                out.append(F.sum(F.when(valid, F.col(_LAG))).alias(f"_q{i}_lag_sum"))
        return out

    def drop_reason(self, valid: Column, reason: Column) -> Column | None:
        """For a valid row: the name of the first `drop` expectation it fails, else null.
        (Invalid rows keep the contract's reason.)"""
        from pyspark.sql import functions as F

        drops = [e for e in self.expectations
                 if e.action is Action.DROP and e.check not in (Check.REQUIRED_FIELDS,
                                                                 Check.CONTRACT)]
        if not drops:
            return None
        return F.coalesce(*[F.when(self._row_failed(e, valid, reason), F.lit(e.name))
                            for e in drops])

    # ---- results -----------------------------------------------------------------------

    def outcomes(self, sums: dict[str, float], *, records: int, valid: int, kept: int,
                 duplicates: int) -> list[Outcome]:
        """Every expectation's result, from the aggregate's sums and the batch's counts:
        `records` read, `valid` contract-valid, `kept` valid and not dropped (what the
        dedupe looked at), `duplicates` the dedupe removed."""
        out = []
        for i, e in enumerate(self.expectations):
            failed = int(sums.get(f"_q{i}_failed") or 0)
            metric: float | None
            if e.check in (Check.REQUIRED_FIELDS, Check.CONTRACT):
                checked, metric = records, None
            elif e.check is Check.UNIQUE_TRANSACTION_ID:
                checked, failed, metric = kept, duplicates, None
            elif e.check is Check.VOLUME:
                low, high = e.min_rows or 0, e.max_rows
                inside = records >= low and (high is None or records <= high)
                checked, failed, metric = records, 0 if inside else records, float(records)
            elif e.check is Check.FRESHNESS:
                lag_sum = sums.get(f"_q{i}_lag_sum")
                checked = valid
                metric = round(float(lag_sum) / valid, 3) if valid and lag_sum is not None \
                    else None
            else:
                checked, metric = valid, None
            if metric is None:
                metric = round(failed / checked, 6) if checked else 0.0
            out.append(Outcome(e, checked, failed, metric))
        return out

    @staticmethod
    def failing(outcomes: list[Outcome]) -> list[Outcome]:
        """The `fail` expectations that failed: the micro-batch must not be written."""
        return [o for o in outcomes if o.expectation.action is Action.FAIL and o.rows_failed]

    @staticmethod
    def failure_message(failed: list[Outcome]) -> str:
        return "; ".join(
            f"expectation {o.expectation.name!r} ({o.expectation.layer}, action fail) "
            f"failed on {o.rows_failed} of {o.rows_checked} rows" for o in failed)
