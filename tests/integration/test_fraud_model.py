"""The fraud model on real Spark and Delta: trained on seeded history, stored as a version,
hot-loaded by the stream's ModelHolder, and missing or broken models never break scoring."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.commands import DeltaSource
from contracts.events import EventType, ModelEventData
from contracts.fraud import ModelInfo
from contracts.settings import Settings
from producers.seeder import seed_history
from worker.fraud.features import FEATURES
from worker.fraud.model_store import ModelHolder
from worker.fraud.model_training import (
    METADATA_FILE,
    ModelTrainingFailed,
    model_version,
    train_fraud_model,
)
from worker.fraud.velocity import with_velocity
from worker.storage import StoragePaths

pytestmark = pytest.mark.spark

RECORDS = 20_000
VELOCITY_MINUTES = 30.0


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("fraud-model"), spark_master="local[2]",
                    spark_driver_memory="1g")


@pytest.fixture(scope="module")
def spark(settings: Settings) -> Iterator[Any]:
    from worker.spark_session import build_session

    session = build_session(settings, app_name="fraud-model-tests")
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="module")
def history(settings: Settings) -> DeltaSource:
    """Seven days of seeded silver; the source covering all of it."""
    end = datetime.now(UTC)
    seed_history(settings, records=RECORDS, days=7, seed=20261202, progress=False, end=end)
    return DeltaSource(kind="delta", start_date=(end - timedelta(days=7)).date(),
                       end_date=end.date())


@pytest.fixture(scope="module")
def trained(spark: Any, settings: Settings, history: DeltaSource) -> ModelInfo:
    return train_fraud_model(spark, settings, history, "train-1")


@pytest.fixture(scope="module")
def silver_sample(spark: Any, settings: Settings, trained: ModelInfo) -> Any:
    rows = spark.read.format("delta").load(str(StoragePaths(settings).silver)).limit(300)
    return with_velocity(rows, VELOCITY_MINUTES).persist()


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, ModelEventData]] = []

    def __call__(self, event_type: str, data: dict[str, Any]) -> None:
        self.seen.append((event_type, ModelEventData.model_validate(data)))


def holder_for(spark: Any, data_dir: Path) -> tuple[ModelHolder, Events]:
    events = Events()
    paths = StoragePaths(Settings(data_dir=data_dir))
    return ModelHolder(spark, paths, VELOCITY_MINUTES, on_event=events), events


def break_version(models: Path, version: str) -> None:
    """A version that looks complete (metadata.json) but whose model does not load."""
    (models / version / "model").mkdir(parents=True)
    (models / version / "model" / "metadata").write_text("not a spark model")
    (models / version / METADATA_FILE).write_text("{}")


def test_model_learns_the_generated_fraud(trained: ModelInfo, settings: Settings,
                                          history: DeltaSource) -> None:
    metrics = trained.metrics
    assert metrics.area_under_roc >= 0.9, metrics
    assert 0.0 < metrics.area_under_pr <= 1.0
    assert 0.0 <= metrics.precision <= 1.0 and 0.0 <= metrics.recall <= 1.0
    assert metrics.threshold == 0.5
    assert metrics.train_rows + metrics.test_rows == RECORDS
    assert 0.1 < metrics.test_rows / RECORDS < 0.3  # the 80/20 split
    assert metrics.positives > 100
    assert trained.features == FEATURES
    assert (trained.trained_from, trained.trained_to) == (
        history.start_date.isoformat(), history.end_date.isoformat())


def test_model_is_stored_as_a_complete_version(trained: ModelInfo,
                                               settings: Settings) -> None:
    models = StoragePaths(settings).models
    assert trained.version.endswith("-train-1")
    assert Path(trained.path) == models / trained.version
    stored = json.loads((Path(trained.path) / METADATA_FILE).read_text())
    assert ModelInfo.model_validate(stored) == trained
    assert (Path(trained.path) / "model").is_dir()
    assert [p.name for p in models.iterdir()] == [trained.version]  # no temp dir left


def test_versions_sort_by_training_time() -> None:
    early = model_version(datetime(2026, 12, 2, 9, 5, tzinfo=UTC), "zzz")
    late = model_version(datetime(2026, 12, 2, 19, 30, tzinfo=UTC), "aaa")
    assert early == "20261202T090500Z-zzz" and early < late


def test_no_model_gives_null_columns(spark: Any, silver_sample: Any,
                                     tmp_path: Path) -> None:
    holder, events = holder_for(spark, tmp_path)
    holder.refresh()  # the models directory does not even exist
    assert holder.current_version is None
    out = holder.apply(silver_sample)
    assert out.columns == [*silver_sample.columns, "model_score", "model_version"]
    assert dict(out.dtypes)["model_score"] == "double"
    assert out.where("model_score IS NOT NULL OR model_version IS NOT NULL").count() == 0
    assert events.seen == []


def test_holder_loads_the_new_version_and_scores(spark: Any, settings: Settings,
                                                 trained: ModelInfo,
                                                 silver_sample: Any) -> None:
    holder, events = holder_for(spark, settings.data_dir)
    assert holder.current_version is None
    holder.refresh()
    assert holder.current_version == trained.version
    assert [(t, d.version, d.error) for t, d in events.seen] == [
        (EventType.MODEL_LOADED.value, trained.version, None)]
    rows = holder.apply(silver_sample).select("model_score", "model_version").collect()
    assert len(rows) == 300
    assert all(0.0 <= r["model_score"] <= 1.0 for r in rows)
    assert {r["model_version"] for r in rows} == {trained.version}
    holder.refresh()  # nothing newer: no reload, no event
    assert len(events.seen) == 1


def test_broken_newer_version_keeps_the_previous_model(spark: Any, settings: Settings,
                                                       trained: ModelInfo,
                                                       silver_sample: Any) -> None:
    holder, events = holder_for(spark, settings.data_dir)
    holder.refresh()
    models = StoragePaths(settings).models
    broken = "99991231T235959Z-broken"
    break_version(models, broken)
    (models / ".tmp-99991231T235959Z-half-written").mkdir()  # ignored: not complete
    try:
        holder.refresh()
        assert holder.current_version == trained.version
        failed = [d for t, d in events.seen if t == EventType.MODEL_FAILED.value]
        assert [d.version for d in failed] == [broken]
        assert failed[0].error is not None and failed[0].error.message
        versions = {r["model_version"] for r in
                    holder.apply(silver_sample).select("model_version").collect()}
        assert versions == {trained.version}
        holder.refresh()  # reported once, not at every micro-batch
        assert len(events.seen) == 2
    finally:
        import shutil

        shutil.rmtree(models / broken)
        shutil.rmtree(models / ".tmp-99991231T235959Z-half-written")


def test_only_a_broken_version_gives_nulls(spark: Any, silver_sample: Any,
                                           tmp_path: Path) -> None:
    holder, events = holder_for(spark, tmp_path)
    break_version(StoragePaths(Settings(data_dir=tmp_path)).models, "20261202T000000Z-x")
    holder.refresh()
    assert holder.current_version is None
    assert [t for t, _ in events.seen] == [EventType.MODEL_FAILED.value]
    out = holder.apply(silver_sample)
    assert out.where("model_score IS NOT NULL").count() == 0


def test_too_few_rows_fail_clearly(spark: Any, settings: Settings,
                                   history: DeltaSource) -> None:
    empty = DeltaSource(kind="delta", start_date=date(2001, 1, 1), end_date=date(2001, 1, 7))
    with pytest.raises(ModelTrainingFailed, match="training needs at least"):
        train_fraud_model(spark, settings, empty, "train-empty")
