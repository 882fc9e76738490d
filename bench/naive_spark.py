"""The naive peer: a plain PySpark script, Kafka -> from_json -> Delta append.

Run as `python -m bench.naive_spark`; prints one JSON line with its timings. Same jars,
master and driver memory as the worker; none of its validation, quarantine or dashboard.
"""

from __future__ import annotations

import argparse
import sys
import time

import orjson


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="2g")
    args = parser.parse_args(argv)

    started = time.monotonic()
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from contracts.spark_schema import spark_schema_ddl
    from devkit.jars import spark_jars

    spark = (
        SparkSession.builder.appName("naive-kafka-to-delta")
        .master(args.master)
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.jars", ",".join(str(j) for j in spark_jars()))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog",
                "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    spark_start = time.monotonic() - started
    schema = spark_schema_ddl()
    runs = []
    for i in range(args.runs):
        t0 = time.monotonic()
        source = (spark.read.format("kafka")
                  .option("kafka.bootstrap.servers", args.bootstrap)
                  .option("subscribe", args.topic)
                  .option("startingOffsets", "earliest")
                  .option("endingOffsets", "latest")
                  .load())
        rows = source.select(F.from_json(F.col("value").cast("string"), schema).alias("t")) \
            .select("t.*")
        rows.write.format("delta").mode("append").save(f"{args.out}/run{i}")
        runs.append(round(time.monotonic() - t0, 3))
    spark.stop()
    print(orjson.dumps({"spark_start_s": round(spark_start, 3), "run_seconds": runs}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
