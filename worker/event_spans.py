"""Event-time spans: which stretches of event time a write touched, so that the tables
recomputed from silver behind the stream (fraud scores, gold windows) redo exactly those.

A micro-batch reports the 5-minute buckets its new silver rows fall into; contiguous
buckets merge into spans. A late row therefore adds a small span of its own instead of
stretching one span from its time to now. Each downstream table widens the spans by what
depends on a row (a window's size, the velocity window) and recomputes the result.
Pure Python: no Spark.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

BUCKET = timedelta(minutes=5)
BUCKET_SECONDS = int(BUCKET.total_seconds())
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True)
class EventSpan:
    """Event times in [start, end), UTC."""

    start: datetime
    end: datetime

    def as_json(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}

    @classmethod
    def from_json(cls, row: dict[str, str]) -> EventSpan:
        return cls(datetime.fromisoformat(row["start"]), datetime.fromisoformat(row["end"]))


def bucket_spans(bucket_starts: Iterable[int]) -> list[EventSpan]:
    """Spans covering the 5-minute buckets given by their start (epoch seconds)."""
    return merge_spans(
        EventSpan(_at(b), _at(b + BUCKET_SECONDS)) for b in set(bucket_starts))


def merge_spans(spans: Iterable[EventSpan]) -> list[EventSpan]:
    """Sorted, disjoint spans covering the same times (touching spans merge)."""
    merged: list[EventSpan] = []
    for span in sorted(spans):
        if merged and span.start <= merged[-1].end:
            if span.end > merged[-1].end:
                merged[-1] = EventSpan(merged[-1].start, span.end)
        else:
            merged.append(span)
    return merged


def widen(spans: Iterable[EventSpan], *, before: timedelta = timedelta(0),
          after: timedelta = timedelta(0)) -> list[EventSpan]:
    return merge_spans(EventSpan(s.start - before, s.end + after) for s in spans)


def window_starts(spans: Iterable[EventSpan], size: timedelta, slide: timedelta
                  ) -> list[EventSpan]:
    """Spans of the window starts (aligned to the epoch, as Spark's `window()` aligns them)
    of every window of `size` sliding by `slide` that overlaps one of the spans: the
    windows whose contents a change inside the spans can alter."""
    out = []
    for span in spans:
        first = _floor(span.start - size + slide, slide)
        last = _floor(span.end - timedelta(microseconds=1), slide)
        out.append(EventSpan(first, last + slide))
    return merge_spans(out)


def sql_in_spans(column: str, spans: Iterable[EventSpan]) -> str:
    """A SQL predicate: `column` inside one of the spans (for replaceWhere and filters)."""
    parts = [f"({column} >= '{_sql_ts(s.start)}' AND {column} < '{_sql_ts(s.end)}')"
             for s in spans]
    return " OR ".join(parts) if parts else "false"


def save_spans_json(spans: Iterable[EventSpan]) -> list[dict[str, str]]:
    return [s.as_json() for s in spans]


def _floor(moment: datetime, step: timedelta) -> datetime:
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    step_us = step // timedelta(microseconds=1)
    return _EPOCH + timedelta(microseconds=micros - micros % step_us)


def _at(epoch_seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=epoch_seconds)


def _sql_ts(moment: datetime) -> str:
    # Spark reads a zone-less literal in the session time zone, which the worker pins to UTC.
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
