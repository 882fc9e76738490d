"""The machine and software a run happened on."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import psutil


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _java() -> str:
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = [line for line in (out.stderr or out.stdout).strip().splitlines()
             if "JAVA_OPTIONS" not in line and "_JAVA_OPTIONS" not in line]
    return lines[0] if lines else "unknown"


def _pkg(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def describe() -> dict[str, Any]:
    mem = psutil.virtual_memory()
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem.total / 1024**3, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "java": _java(),
        "pyspark": _pkg("pyspark"),
        "delta_spark": _pkg("delta-spark"),
        "deltalake": _pkg("deltalake"),
        "confluent_kafka": _pkg("confluent-kafka"),
        **_jars(),
    }


def _jars() -> dict[str, Any]:
    """Versions of the JVM artifacts actually on the class path (from the jar names)."""
    try:
        from devkit.jars import broker_classpath, spark_jars

        spark = [p.name for p in spark_jars()]
        broker = [p.name for p in broker_classpath()]
    except Exception:  # a missing jar cache is reported by the run itself
        return {}
    pick = {
        "delta_spark_jar": next((n for n in spark if n.startswith("delta-spark_")), None),
        "spark_kafka_jar": next((n for n in spark if n.startswith("spark-sql-kafka")), None),
        "kafka_broker_jar": next((n for n in broker if n.startswith("kafka_")), None),
    }
    return {k: v.removesuffix(".jar") for k, v in pick.items() if v}
