"""Diagnostic, not part of `make bench`: where the stream's parse step spends its time.

`python -m bench.parse_profile [--records N]` generates Kafka-like rows (key, value,
partition, offset; 1% malformed) into a cached DataFrame, so Kafka is out of the picture,
and times, on the worker's own Spark session settings, the pieces of a micro-batch:
`from_json` alone (the naive peer's parse), the worker's `parse_transactions` and its
parts, the persist + count the stream does first, and the Delta append. Each figure is
the best of `--repeats` runs after one warm-up run.

The validation projection compiles to a method of ~17.5 kB of bytecode, above HotSpot's
8 kB limit for JIT compilation, so by default it runs interpreted (Spark logs "Generated
method too long to be JIT compiled" at INFO). This profile measured that at ~1.7x of the
parse step, and the worker's session now passes `-XX:-DontCompileHugeMethods` to its JVM
(`worker/spark_session.py`). JVM flags are compared by running this twice with different
`spark.driver.extraJavaOptions`.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq


def _write_input(path: Path, records: int, invalid_rate: float) -> None:
    from producers.generator import TransactionGenerator

    gen = TransactionGenerator(7)
    mix = random.Random(11)
    keys, values = [], []
    for _ in range(records):
        if mix.random() < invalid_rate:
            key, raw, _kind = gen.invalid_record()
            keys.append(key.encode())
            values.append(raw)
        else:
            event = gen.event()
            keys.append(event["transaction_id"].encode())
            values.append(orjson.dumps(event))
    table = pa.table({
        "key": pa.array(keys, pa.binary()), "value": pa.array(values, pa.binary()),
        "topic": pa.array(["t"] * records), "partition": pa.array(
            [i % 3 for i in range(records)], pa.int32()),
        "offset": pa.array(range(records), pa.int64()),
    })
    pq.write_table(table, path)


def main(argv: list[str] | None = None) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="parse-profile-"))
    try:
        return _profile(tmp, argv)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _profile(tmp: Path, argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--quick", action="store_true",
                        help="only the naive parse, the worker's parse and the stream's step")
    parser.add_argument("--conf", action="append", default=[],
                        help="extra runtime SQL conf key=value (repeatable)")
    args = parser.parse_args(argv)

    from pyspark import StorageLevel
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    from contracts.settings import Settings
    from contracts.spark_schema import FIELD_RULES, spark_schema_ddl
    from worker.spark_session import build_session
    from worker.transaction_parser import REASON, parse_transactions

    _write_input(tmp / "input.parquet", args.records, 0.01)
    spark = build_session(Settings(spark_master=args.master, data_dir=tmp), "parse-profile")
    for item in args.conf:
        key, _, value = item.partition("=")
        spark.conf.set(key, value)
    source = spark.read.parquet(str(tmp / "input.parquet")).cache()
    source.count()
    text = F.col("value").cast("string")
    results: dict[str, float] = {}

    def timed(name: str, action: Callable[[], Any]) -> None:
        action()  # warm-up: code generation and JIT
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.monotonic()
            action()
            best = min(best, time.monotonic() - t0)
        results[name] = round(best, 3)
        print(f"{name:<60} {best:7.2f} s  {args.records / best:10,.0f} rec/s", flush=True)

    def noop(df: DataFrame) -> Callable[[], None]:
        return lambda: df.write.format("noop").mode("overwrite").save()

    def parse_count(level: StorageLevel | None, slim: bool = False) -> Callable[[], None]:
        def run() -> None:
            df = parse_transactions(source)
            if slim:  # raw bytes are only needed for the quarantine / DLQ
                df = df.withColumn("value", F.when(F.col(REASON).isNotNull(), F.col("value")))
            if level is not None:
                df = df.persist(level)
            # The stream's first job: counts, offsets and max event time per partition.
            df.groupBy("partition").agg(
                F.count(F.lit(1)), F.sum(F.when(F.col(REASON).isNull(), 1).otherwise(0)),
                F.max("offset"), F.max(F.when(F.col(REASON).isNull(),
                                              F.col("event_timestamp")))).collect()
            if level is not None:
                df.unpersist()
        return run

    timed("scan cached input (baseline)", noop(source))
    timed("from_json typed schema (the naive peer's parse)",
          noop(source.select(F.from_json(text, spark_schema_ddl()).alias("t")).select("t.*")))
    if args.quick:
        timed("parse_transactions (all of it)", noop(parse_transactions(source)))
        timed("parse + persist(MEMORY_AND_DISK) + groupBy count (the stream)",
              parse_count(StorageLevel.MEMORY_AND_DISK))
        spark.stop()
        print(orjson.dumps({"records": args.records, "best_seconds": results}).decode())
        return 0
    strings = ", ".join(f"`{r.name}` STRING" for r in FIELD_RULES)
    timed("from_json all-STRING schema (the field texts)",
          noop(source.select(F.from_json(text, strings).alias("j")).select("j.*")))
    timed("try_parse_json of [value] (the JSON types' source)",
          noop(source.select(F.try_parse_json(F.concat(F.lit("["), text, F.lit("]"))))))
    timed("json_object_keys alone (the not-an-object check)",
          noop(source.select(F.json_object_keys(text).isNull().alias("x"))))
    timed("ltrim(value) startswith '{' alone (a cheaper first test)",
          noop(source.select(F.ltrim(text).startswith("{").alias("x"))))
    parsed = parse_transactions(source)
    timed("parse_transactions (all of it)", noop(parsed))
    timed("parse_transactions, only _reason", noop(parsed.select(REASON)))

    timed("parse + groupBy count (no persist)", parse_count(None))
    timed("parse + persist(MEMORY_AND_DISK) + groupBy count (the stream)",
          parse_count(StorageLevel.MEMORY_AND_DISK))
    timed("  same, raw value kept only for invalid rows",
          parse_count(StorageLevel.MEMORY_AND_DISK, slim=True))

    cached = parse_transactions(source).persist(StorageLevel.MEMORY_AND_DISK)
    cached.count()
    valid = cached.where(F.col(REASON).isNull()).withColumn(
        "event_date", F.to_date("event_timestamp")).drop(
        "key", "value", "topic", "partition", "offset", REASON)
    out = tmp / "delta"
    counter = iter(range(1000))
    timed("Delta append of the valid rows from the cache, by event_date",
          lambda: valid.write.format("delta").mode("append").partitionBy("event_date")
          .save(str(out / f"t{next(counter)}")))
    timed("parquet write of the same rows, by event_date (no Delta)",
          lambda: valid.write.mode("overwrite").partitionBy("event_date")
          .parquet(str(out / "plain")))
    # Delta collects min/max/null statistics on the first 32 columns of every file.
    spark.conf.set("spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols",
                   "3")
    timed("Delta append as above, statistics on 3 columns only",
          lambda: valid.write.format("delta").mode("append").partitionBy("event_date")
          .save(str(out / f"s{next(counter)}")))
    spark.stop()
    print(orjson.dumps({"records": args.records, "best_seconds": results}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
