"""The bench's profile reads the step timings the worker logs: micro-batch steps and the
downstream refresher's steps (worker/medallion.py, worker/downstream.py)."""

from __future__ import annotations

from bench.profiling import merge, step_timings

LOG = """\
13:20:01 DEBUG micro-batch 3: parse+count=1.50s bronze=0.50s silver=2.00s quality=0.25s
13:20:02 DEBUG downstream: 2 span(s) dashboard=0.40s fraud=1.60s gold=2.00s
13:20:04 DEBUG micro-batch 4: parse+count=0.50s bronze=0.50s silver=1.00s quality=0.25s
13:20:05 DEBUG downstream: 1 span(s) fraud=1.40s gold=1.00s
"""


def test_micro_batch_and_downstream_steps_are_summed() -> None:
    profile = step_timings(LOG)
    assert profile["micro_batches"] == 2
    assert profile["downstream_recomputes"] == 2
    assert profile["seconds"] == {
        "parse+count": 2.0, "bronze": 1.0, "silver": 3.0, "quality": 0.5,
        "dashboard (own thread)": 0.4, "fraud scores (own thread)": 3.0,
        "gold tables (own thread)": 3.0}
    both = merge([profile, profile])
    assert both["micro_batches"] == 4 and both["downstream_recomputes"] == 4
    assert both["seconds"]["fraud scores (own thread)"] == 6.0
