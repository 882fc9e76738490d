"""The stream's fraud model: the newest complete version under `models/fraud`, hot-loaded
(docs/fraud-model.md#hot-loading).

`refresh()` is cheap (one directory listing) and runs once per micro-batch, so a version
stored by `train_fraud_model` is scoring within two triggers. A version that does not load
is reported once (`model.failed`) and skipped; the previous model, or none, stays in use.
Scoring never fails for want of a model: without one, `model_score` and `model_version`
are null.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.errors import ErrorCode
from contracts.events import ErrorInfo, EventType, ModelEventData
from worker.fraud.features import feature_frame
from worker.fraud.model_training import METADATA_FILE, MODEL_DIR
from worker.storage import StoragePaths

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

MODEL_SCORE = "model_score"
MODEL_VERSION = "model_version"


class ModelHolder:
    def __init__(self, spark: SparkSession, paths: StoragePaths, velocity_minutes: float,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.spark = spark
        self.models_dir = paths.models
        self.velocity_minutes = velocity_minutes
        self.on_event = on_event
        self._model: PipelineModel | None = None
        self._version: str | None = None
        self._failed: set[str] = set()  # versions that did not load: not tried again
        self._lock = threading.Lock()

    @property
    def current_version(self) -> str | None:
        return self._version

    def refresh(self) -> None:
        """Load the newest complete version newer than the current one, if any. A broken
        one is reported and skipped, and the next newest is tried."""
        for version in self._newer_versions():
            if self._load(version):
                return

    def apply(self, frame: DataFrame) -> DataFrame:
        """`frame` (silver columns + `velocity_count`) with `model_score` (the probability
        of fraud) and `model_version`; both null when there is no usable model."""
        from pyspark.ml.functions import vector_to_array
        from pyspark.sql import functions as F

        with self._lock:
            model, version = self._model, self._version
        if model is not None and version is not None:
            try:
                scored = model.transform(feature_frame(frame, self.velocity_minutes))
                return scored.select(
                    *[F.col(c) for c in frame.columns],
                    vector_to_array("probability")[1].cast("double").alias(MODEL_SCORE),
                    F.lit(version).alias(MODEL_VERSION))
            except Exception as exc:  # the plan did not build: this model cannot score it
                self._reject(version, exc)
        return frame.select("*", F.lit(None).cast("double").alias(MODEL_SCORE),
                            F.lit(None).cast("string").alias(MODEL_VERSION))

    # ---- internals ---------------------------------------------------------------------

    def _newer_versions(self) -> list[str]:
        """Complete versions (a directory with metadata.json; `.tmp-*` ones are still
        being written) newer than the current one, newest first."""
        try:
            names = [p.name for p in self.models_dir.iterdir()
                     if p.is_dir() and not p.name.startswith(".")
                     and (p / METADATA_FILE).is_file()]
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("cannot list fraud models in %s: %s", self.models_dir, exc)
            return []
        current = self._version or ""
        return sorted((n for n in names if n > current and n not in self._failed),
                      reverse=True)

    def _load(self, version: str) -> bool:
        from pyspark.ml import PipelineModel

        path = self.models_dir / version
        try:
            model = PipelineModel.load(str(path / MODEL_DIR))
        except Exception as exc:
            self._failed.add(version)
            self._report_failure(version, path, exc)
            return False
        with self._lock:
            self._model, self._version = model, version
        log.info("fraud model %s loaded from %s", version, path)
        self._emit(EventType.MODEL_LOADED, ModelEventData(version=version, path=str(path)))
        return True

    def _reject(self, version: str, exc: Exception) -> None:
        """A loaded model that cannot score: dropped, so later batches get nulls until a
        refresh loads the newest other version that works, instead of failing again."""
        with self._lock:
            if self._version == version:
                self._model, self._version = None, None
        self._failed.add(version)
        self._report_failure(version, self.models_dir / version, exc)

    def _report_failure(self, version: str, path: Path, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:500]}" \
            if str(exc).strip() else type(exc).__name__
        log.error("fraud model %s at %s is not usable (%s); keeping %s", version, path,
                  message, self._version if self._model is not None else "no model")
        self._emit(EventType.MODEL_FAILED, ModelEventData(
            version=version, path=str(path),
            error=ErrorInfo(code=ErrorCode.INTERNAL_ERROR.value, message=message)))

    def _emit(self, event_type: EventType, data: ModelEventData) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event_type.value, data.model_dump(mode="json"))
        except Exception:  # reporting must never stop scoring
            log.exception("could not report %s for fraud model %s", event_type, data.version)
