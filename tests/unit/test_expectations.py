"""The expectation registry (file, validation) and the alert windows: pure logic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from worker.quality.alerts import AlertTracker
from worker.quality.checks import Outcome, QualityChecks
from worker.quality.expectations import (
    Action,
    Check,
    InvalidExpectations,
    load_expectations,
    parse_expectations,
)

CONTRACT = [
    {"name": "completeness", "layer": "silver", "check": "required_fields", "action": "drop"},
    {"name": "validity", "layer": "silver", "check": "contract", "action": "drop"},
]
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def test_the_shipped_defaults_cover_every_dimension() -> None:
    defaults = {e.name: e for e in load_expectations()}
    assert set(defaults) == {"completeness", "validity", "uniqueness", "amount_consistency",
                             "volume", "freshness"}
    assert defaults["completeness"].action is Action.DROP
    assert defaults["validity"].action is Action.DROP
    for name in ("amount_consistency", "volume", "freshness", "uniqueness"):
        assert defaults[name].action is Action.WARN
    assert all(e.threshold == 0.01 and e.window == 10 for e in defaults.values())


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "x", "layer": "silver", "action": "warn"}, "exactly one of"),
    ({"name": "x", "layer": "gold", "predicate": "true", "action": "warn"}, "layer"),
    ({"name": "x", "layer": "silver", "predicate": "true", "action": "explode"}, "action"),
    ({"name": "x", "layer": "bronze", "check": "volume", "action": "drop", "min_rows": 1},
     "drop"),
    ({"name": "x", "layer": "bronze", "check": "volume", "action": "warn"}, "min_rows"),
    ({"name": "x", "layer": "silver", "check": "freshness", "action": "warn"},
     "max_lag_seconds"),
    ({"name": "Bad Name", "layer": "silver", "predicate": "true", "action": "warn"}, "name"),
    ({"name": "x", "layer": "silver", "predicate": "true", "action": "warn", "extra": 1},
     "extra"),
    ({"name": "x", "layer": "silver", "predicate": "true", "action": "warn", "threshold": 2},
     "threshold"),
])
def test_a_bad_entry_is_refused_by_name(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidExpectations) as info:
        parse_expectations({"expectations": [*CONTRACT, entry]}, "my.yaml")
    assert "my.yaml" in str(info.value)
    assert message in str(info.value)


def test_the_contract_checks_cannot_be_silenced_or_repeated() -> None:
    warn = [{**CONTRACT[0], "action": "warn"}, CONTRACT[1]]
    with pytest.raises(InvalidExpectations, match="drop or fail"):
        parse_expectations({"expectations": warn})
    with pytest.raises(InvalidExpectations, match="required_fields"):
        parse_expectations({"expectations": CONTRACT[1:]})
    with pytest.raises(InvalidExpectations, match="twice"):
        parse_expectations({"expectations": [*CONTRACT, CONTRACT[0]]})


def test_a_file_that_is_not_yaml_or_missing_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("expectations: [\n")
    with pytest.raises(InvalidExpectations, match="not valid YAML"):
        load_expectations(bad)
    with pytest.raises(InvalidExpectations, match="cannot read"):
        load_expectations(tmp_path / "missing.yaml")
    bad.write_text("- just a list\n")
    with pytest.raises(InvalidExpectations, match="expectations"):
        load_expectations(bad)


def _outcome(expectation: Any, checked: int, failed: int) -> Outcome:
    return Outcome(expectation, checked, failed, None)


def test_an_alert_opens_above_the_threshold_and_recovers_after_a_clean_window() -> None:
    e = next(x for x in load_expectations() if x.name == "amount_consistency")
    tracker = AlertTracker((e,))
    changes = []
    # 100 rows a batch; 1 % failing is not above the threshold, 2 % is.
    for batch, failed in enumerate([1, 1, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]):
        changes += [(batch, c) for c in tracker.observe([_outcome(e, 100, failed)], batch, NOW)]
    opened = [(b, c) for b, c in changes if c.opened]
    recovered = [(b, c) for b, c in changes if not c.opened]
    assert [b for b, _ in opened] == [3]
    assert opened[0][1].rows_failed == 8 and opened[0][1].rows_checked == 400
    # Recovered once 10 micro-batches after the alert, with the window at or below 1 %.
    assert [b for b, _ in recovered] == [13]
    assert recovered[0][1].opened_at == NOW and recovered[0][1].recovered_at == NOW


def test_alerts_resume_from_history_without_opening_twice() -> None:
    e = next(x for x in load_expectations() if x.name == "uniqueness")
    tracker = AlertTracker((e,))
    tracker.seed({e.key: [(100, 50)] * 3}, {e.key: NOW})
    assert tracker.open_alerts() == [e.key]
    assert tracker.observe([_outcome(e, 100, 50)], 4, NOW) == []


def test_outcomes_follow_the_documented_metrics() -> None:
    checks = QualityChecks(load_expectations())
    sums = {"_q0_failed": 2, "_q1_failed": 3, "_q3_failed": 4, "_q5_failed": 1,
            "_q5_lag_sum": 90.0}
    out = {o.expectation.name: o for o in checks.outcomes(
        sums, records=100, valid=95, kept=95, duplicates=5)}
    assert (out["completeness"].rows_checked, out["completeness"].rows_failed) == (100, 2)
    assert (out["validity"].rows_checked, out["validity"].rows_failed) == (100, 3)
    assert (out["uniqueness"].rows_checked, out["uniqueness"].rows_failed) == (95, 5)
    assert out["uniqueness"].metric == pytest.approx(5 / 95, abs=1e-6)
    assert (out["volume"].rows_failed, out["volume"].metric) == (0, 100.0)
    assert out["freshness"].metric == pytest.approx(90 / 95, abs=1e-3)
    assert [o.expectation.check for o in checks.outcomes(
        {}, records=200_000, valid=0, kept=0, duplicates=0) if o.rows_failed] == [Check.VOLUME]
