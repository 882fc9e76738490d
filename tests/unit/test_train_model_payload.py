"""run_batch's source rules: optional for train_fraud_model only (delta, 7 days by default)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from contracts.commands import AnalysisType, DeltaSource, RunBatchPayload, new_command
from contracts.errors import ContractError, ErrorCode

DELTA = {"kind": "delta", "start_date": "2025-01-01", "end_date": "2025-01-31"}


def test_training_defaults_to_the_last_seven_days_of_silver() -> None:
    before = datetime.now(UTC).date()
    payload = RunBatchPayload.model_validate({"analysis_type": "train_fraud_model"})
    after = datetime.now(UTC).date()
    assert isinstance(payload.source, DeltaSource)
    assert payload.source.end_date in (before, after)
    assert payload.source.end_date - payload.source.start_date == timedelta(days=6)


def test_training_uses_a_given_date_range_as_is() -> None:
    payload = RunBatchPayload.model_validate({"analysis_type": "train_fraud_model",
                                              "source": DELTA})
    assert payload.source == DeltaSource(kind="delta", start_date=date(2025, 1, 1),
                                         end_date=date(2025, 1, 31))


def test_the_default_travels_in_the_command() -> None:
    command = new_command("run_batch", {"analysis_type": "train_fraud_model"})
    assert command.payload.source.kind == "delta"
    assert command.payload.analysis_type is AnalysisType.TRAIN_FRAUD_MODEL


@pytest.mark.parametrize("analysis", [a.value for a in AnalysisType
                                      if a is not AnalysisType.TRAIN_FRAUD_MODEL])
def test_every_other_analysis_still_requires_a_source(analysis: str) -> None:
    with pytest.raises(ContractError) as err:
        new_command("run_batch", {"analysis_type": analysis})
    assert err.value.code is ErrorCode.INVALID_REQUEST
    assert f"source is required for analysis_type {analysis}" in err.value.message
    assert new_command("run_batch", {"analysis_type": analysis, "source": DELTA})


@pytest.mark.parametrize("payload, message", [
    ({"source": {"kind": "kafka", "topic": "transactions-batch"}}, "not a Kafka range"),
    ({"source": DELTA, "filters": {"region": "west"}}, "takes no filters"),
])
def test_training_refuses_kafka_sources_and_filters(payload: dict[str, object],
                                                    message: str) -> None:
    with pytest.raises(ContractError) as err:
        new_command("run_batch", {"analysis_type": "train_fraud_model", **payload})
    assert err.value.code is ErrorCode.INVALID_REQUEST
    assert message in err.value.message
