"""The expectation registry: what each expectation checks, where, and what a failure does.

Expectations are data. The defaults ship in `expectations.yaml` next to this module; the
`PIPELINE_EXPECTATIONS` setting names a replacement file. Either is validated when the
worker starts, and a bad entry stops it with a message naming the entry and the problem
(`InvalidExpectations`). Predicates are Spark SQL, so they are also checked against the
record's columns (by Spark) when the stream starts.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_FILE = Path(__file__).with_name("expectations.yaml")


class Action(StrEnum):
    WARN = "warn"
    DROP = "drop"
    FAIL = "fail"


class Check(StrEnum):
    REQUIRED_FIELDS = "required_fields"
    CONTRACT = "contract"
    UNIQUE_TRANSACTION_ID = "unique_transaction_id"
    VOLUME = "volume"
    FRESHNESS = "freshness"
    PREDICATE = "predicate"  # implied by a `predicate:` entry


# Checks that judge one row (so `drop` can send that row to quarantine).
ROW_CHECKS = frozenset({Check.REQUIRED_FIELDS, Check.CONTRACT, Check.FRESHNESS,
                        Check.PREDICATE})
# The contract decides what silver may hold: its checks cannot merely warn.
CONTRACT_CHECKS = frozenset({Check.REQUIRED_FIELDS, Check.CONTRACT})


class InvalidExpectations(ValueError):
    """The expectations file cannot be used; the message names the entry."""


class Expectation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    layer: Literal["bronze", "silver"]
    check: Check = Check.PREDICATE
    predicate: str | None = None
    action: Action
    # Alert when more than `threshold` of the rows checked failed over the last `window`
    # micro-batches; recover when at or below it over the next `window`.
    threshold: float = Field(default=0.01, ge=0, le=1)
    window: int = Field(default=10, ge=1, le=1000)
    min_rows: int | None = Field(default=None, ge=0)
    max_rows: int | None = Field(default=None, ge=1)
    max_lag_seconds: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Expectation:
        if (self.predicate is None) == (self.check is Check.PREDICATE):
            raise ValueError("give exactly one of `check` and `predicate`")
        if self.predicate is not None and not self.predicate.strip():
            raise ValueError("`predicate` is empty")
        if self.action is Action.DROP and self.check not in ROW_CHECKS:
            raise ValueError(f"`drop` needs a row check; {self.check} judges a whole "
                             "micro-batch (use warn or fail)")
        if self.action is Action.WARN and self.check in CONTRACT_CHECKS:
            raise ValueError(f"the `{self.check}` check decides what silver may hold: "
                             "its action is drop or fail")
        if self.check is Check.VOLUME:
            if self.min_rows is None and self.max_rows is None:
                raise ValueError("`volume` needs min_rows and/or max_rows")
            if (self.min_rows or 0) > (self.max_rows or 2**62):
                raise ValueError("min_rows is above max_rows")
        elif self.min_rows is not None or self.max_rows is not None:
            raise ValueError("min_rows/max_rows belong to a `volume` check")
        if self.check is Check.FRESHNESS and self.max_lag_seconds is None:
            raise ValueError("`freshness` needs max_lag_seconds")
        if self.check is not Check.FRESHNESS and self.max_lag_seconds is not None:
            raise ValueError("max_lag_seconds belongs to a `freshness` check")
        return self

    @property
    def key(self) -> str:
        return f"{self.layer}.{self.name}"


def load_expectations(path: Path | None = None) -> tuple[Expectation, ...]:
    """The expectations of `path` (default: the shipped set), or `InvalidExpectations`."""
    source = path or DEFAULT_FILE
    try:
        document = yaml.safe_load(source.read_text())
    except OSError as exc:
        raise InvalidExpectations(f"cannot read expectations file {source}: "
                                  f"{exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InvalidExpectations(f"{source} is not valid YAML: {exc}") from None
    return parse_expectations(document, str(source))


def parse_expectations(document: Any, origin: str = "expectations") -> tuple[Expectation, ...]:
    if not isinstance(document, dict) or not isinstance(document.get("expectations"), list):
        raise InvalidExpectations(f"{origin}: expected a mapping with an `expectations` list")
    out: list[Expectation] = []
    seen: set[str] = set()
    for index, entry in enumerate(document["expectations"]):
        label = (entry.get("name") if isinstance(entry, dict) else None) or f"#{index + 1}"
        try:
            expectation = Expectation.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}"
                for err in exc.errors()[:5])
            raise InvalidExpectations(f"{origin}: expectation {label!r}: {problems}") from None
        if expectation.key in seen:
            raise InvalidExpectations(f"{origin}: expectation {label!r} is declared twice "
                                      f"in layer {expectation.layer}")
        seen.add(expectation.key)
        out.append(expectation)
    checks = [e.check for e in out]
    for needed in (Check.REQUIRED_FIELDS, Check.CONTRACT):
        if checks.count(needed) != 1:
            raise InvalidExpectations(
                f"{origin}: exactly one `{needed}` expectation is needed (the record "
                f"contract is always checked; it names and acts on that check)")
    return tuple(out)
