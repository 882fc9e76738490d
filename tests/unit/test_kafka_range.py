"""Cutting a backfill's resolved range into chunks: pure and deterministic."""

from __future__ import annotations

import orjson

from worker.kafka_range import as_json, chunk_range, from_json, spark_options


def test_chunks_cover_the_range_exactly_once_and_respect_the_size() -> None:
    full = {0: (10, 1010), 1: (0, 5), 2: (7, 7)}
    chunks = chunk_range(full, 300)
    covered: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for chunk in chunks:
        assert sum(end - start for start, end in chunk.values()) <= 300
        for partition, (start, end) in chunk.items():
            assert start < end
            covered[partition].extend(range(start, end))
    assert covered == {0: list(range(10, 1010)), 1: list(range(5)), 2: []}
    assert chunk_range(full, 300) == chunks  # a re-run cuts the same chunks


def test_an_empty_range_has_no_chunks() -> None:
    assert chunk_range({0: (5, 5)}, 100) == []


def test_spark_options_read_exactly_the_chunk() -> None:
    opts = spark_options("t", {1: (3, 9), 0: (0, 2)})
    assert orjson.loads(opts["assign"]) == {"t": [0, 1]}
    assert orjson.loads(opts["startingOffsets"]) == {"t": {"0": 0, "1": 3}}
    assert orjson.loads(opts["endingOffsets"]) == {"t": {"0": 2, "1": 9}}


def test_the_recorded_form_round_trips() -> None:
    full = {0: (1, 2), 3: (4, 8)}
    assert from_json(orjson.loads(orjson.dumps(as_json(full)))) == full
