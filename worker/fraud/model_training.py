"""The `train_fraud_model` batch: silver over a date range -> features -> a pyspark.ml
pipeline, evaluated on a held-out split and stored as a new model version
(docs/fraud-model.md).

A version is written under a hidden temporary directory and renamed into place with its
`metadata.json` already inside, so a reader never sees a half-written model: a version
directory without `metadata.json` is not a model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.commands import DeltaSource, RunBatchPayload
from contracts.fraud import ModelInfo, ModelMetrics
from contracts.settings import Settings
from worker.batch_sources import read_source
from worker.fraud.features import (
    CATEGORICAL_FEATURES,
    FEATURES,
    LABEL,
    NUMERIC_FEATURES,
    feature_frame,
)
from worker.storage import StoragePaths

if TYPE_CHECKING:
    from pyspark.ml import Pipeline
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

METADATA_FILE = "metadata.json"
MODEL_DIR = "model"  # the saved PipelineModel, inside a version directory
# The probability at or above which a transaction counts as fraud in the reported
# precision and recall (the stream reports the probability itself as `model_score`).
SERVING_THRESHOLD = 0.5
TEST_FRACTION = 0.2
SPLIT_SEED = 42
# Fewer rows, or fewer of either class, than this cannot give a meaningful model.
MIN_ROWS = 500
MIN_PER_CLASS = 20


class ModelTrainingFailed(Exception):
    """The data cannot train a model (too few rows, a single class): the batch fails
    with MODEL_TRAINING_FAILED and no version is stored."""


def model_version(at: datetime, batch_id: str) -> str:
    """`YYYYmmddTHHMMSSZ-<batch_id>`: versions sort by the time they were trained."""
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{batch_id}"


def build_pipeline() -> Pipeline:
    """Categoricals indexed and one-hot encoded (unseen values kept in an extra slot),
    assembled with the numeric features, into a logistic regression: fraud's patterns
    add up in log-odds, and it trains in a few passes (a tree ensemble took minutes on
    two cores for no better AUC)."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler

    indexed = [f"{c}_idx" for c in CATEGORICAL_FEATURES]
    encoded = [f"{c}_vec" for c in CATEGORICAL_FEATURES]
    return Pipeline(stages=[
        StringIndexer(inputCols=list(CATEGORICAL_FEATURES), outputCols=indexed,
                      handleInvalid="keep"),
        OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"),
        VectorAssembler(inputCols=[*encoded, *NUMERIC_FEATURES], outputCol="f_vector"),
        LogisticRegression(featuresCol="f_vector", labelCol="f_label", maxIter=20,
                           regParam=0.001, elasticNetParam=0.0, standardization=True),
    ])


def train_fraud_model(spark: SparkSession, settings: Settings, source: DeltaSource,
                      batch_id: str, check_cancel: Callable[[], None] = lambda: None,
                      ) -> ModelInfo:
    """Train on silver's rows in `source`'s date range, evaluate, store a new version.

    `check_cancel` raises to stop between steps (the batch runner's cancel flag).
    """
    from pyspark.sql import functions as F

    check_cancel()
    rows = read_source(spark, settings, source).valid
    data = (feature_frame(rows, settings.fraud_velocity_minutes)
            .select(*FEATURES, F.col(LABEL).cast("double").alias("f_label"))
            .persist())
    try:
        counts = {bool(r["f_label"]): int(r["n"])
                  for r in data.groupBy("f_label").agg(F.count("*").alias("n")).collect()}
        positives, negatives = counts.get(True, 0), counts.get(False, 0)
        _check_trainable(positives, negatives, source)
        check_cancel()
        train, test = data.randomSplit([1 - TEST_FRACTION, TEST_FRACTION], seed=SPLIT_SEED)
        model = build_pipeline().fit(train)
        check_cancel()
        metrics = _evaluate(model.transform(test), train.count(), positives)
    finally:
        data.unpersist()
    check_cancel()
    paths = StoragePaths(settings)
    version = model_version(datetime.now(UTC), batch_id)
    info = ModelInfo(version=version, path=str(paths.models / version),
                     trained_from=source.start_date.isoformat(),
                     trained_to=source.end_date.isoformat(), features=FEATURES,
                     metrics=metrics)
    _store(model, info, paths.models)
    log.info("fraud model %s stored: AUC-ROC %.3f, AUC-PR %.3f on %d held-out rows",
             version, metrics.area_under_roc, metrics.area_under_pr, metrics.test_rows)
    return info


def training_updates(spark: SparkSession, settings: Settings, payload: RunBatchPayload,
                     batch_id: str, check_cancel: Callable[[], None]) -> dict[str, Any]:
    """The batch runner's branch for train_fraud_model: train, and the batch record's
    updates (`row_count` = rows trained and tested on, `model`; no raw or aggregated
    tables)."""
    if not isinstance(payload.source, DeltaSource):  # the contract refuses this already
        raise ModelTrainingFailed("train_fraud_model needs a delta source")
    info = train_fraud_model(spark, settings, payload.source, batch_id, check_cancel)
    return {"row_count": info.metrics.train_rows + info.metrics.test_rows, "model": info}


def _check_trainable(positives: int, negatives: int, source: DeltaSource) -> None:
    span = f"silver {source.start_date}..{source.end_date}"
    if positives + negatives < MIN_ROWS:
        raise ModelTrainingFailed(
            f"{span} has {positives + negatives} rows; training needs at least {MIN_ROWS}")
    if min(positives, negatives) < MIN_PER_CLASS:
        raise ModelTrainingFailed(
            f"{span} has {positives} fraudulent and {negatives} legitimate rows; training "
            f"needs at least {MIN_PER_CLASS} of each")


def _evaluate(scored: DataFrame, train_rows: int, positives: int) -> ModelMetrics:
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    scored = scored.select("f_label", "rawPrediction",
                           vector_to_array("probability")[1].alias("score")).persist()
    try:
        evaluator = BinaryClassificationEvaluator(labelCol="f_label",
                                                  rawPredictionCol="rawPrediction")
        roc = evaluator.evaluate(scored, {evaluator.metricName: "areaUnderROC"})
        pr = evaluator.evaluate(scored, {evaluator.metricName: "areaUnderPR"})
        flagged = F.col("score") >= SERVING_THRESHOLD
        fraud = F.col("f_label") == 1.0
        row = scored.agg(
            F.count("*").alias("rows"),
            F.sum((flagged & fraud).cast("long")).alias("tp"),
            F.sum(flagged.cast("long")).alias("flagged"),
            F.sum(fraud.cast("long")).alias("fraud"),
        ).first()
    finally:
        scored.unpersist()
    tp, flagged_n, fraud_n = (int(row[k] or 0) for k in ("tp", "flagged", "fraud"))
    return ModelMetrics(
        area_under_roc=round(roc, 6), area_under_pr=round(pr, 6),
        precision=round(tp / flagged_n, 6) if flagged_n else 0.0,
        recall=round(tp / fraud_n, 6) if fraud_n else 0.0,
        threshold=SERVING_THRESHOLD, train_rows=train_rows, test_rows=int(row["rows"]),
        positives=positives)


def _store(model: object, info: ModelInfo, models_dir: Path) -> None:
    """Write under `.tmp-*`, then rename: the version appears complete or not at all."""
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = models_dir / f".tmp-{info.version}-{uuid.uuid4().hex[:8]}"
    try:
        model.write().overwrite().save(str(tmp / MODEL_DIR))  # type: ignore[attr-defined]
        (tmp / METADATA_FILE).write_text(json.dumps(info.model_dump(mode="json"), indent=2))
        os.rename(tmp, models_dir / info.version)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
