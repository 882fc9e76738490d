"""The traditional way to run one analysis: a fresh process per job.

Run as `python -m bench.traditional_job`: start Spark (the worker's own session
settings), read the Delta history, run worker.analytics.revenue_by_category, write the
Delta result, exit. Prints one JSON line with its inner timings.
"""

from __future__ import annotations

import argparse
import sys
import time

import orjson


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--start-date", required=True)
    parser.add_argument("--end-date", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    started = time.monotonic()
    from pyspark.sql import functions as F

    from contracts.settings import load_settings
    from worker.analytics import revenue_by_category
    from worker.spark_session import build_session
    from worker.storage import StoragePaths
    from worker.transaction_parser import contract_columns

    settings = load_settings()
    spark = build_session(settings, app_name="traditional-job")
    spark_start = time.monotonic() - started
    t0 = time.monotonic()
    rows = (spark.read.format("delta").load(str(StoragePaths(settings).transactions))
            .where(F.col("event_date").between(F.lit(args.start_date), F.lit(args.end_date)))
            .select(*contract_columns()))
    (revenue_by_category(rows).coalesce(1).write.format("delta").mode("overwrite")
     .save(args.out))
    job = time.monotonic() - t0
    t1 = time.monotonic()
    spark.stop()
    print(orjson.dumps({"spark_start_s": round(spark_start, 3), "job_s": round(job, 3),
                        "spark_stop_s": round(time.monotonic() - t1, 3)}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
