"""Jar cache: manifests verify, damage and staleness are reported with the fixing command."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devkit import jars
from devkit._resolve import (
    ResolvedArtifact,
    class_owners,
    overlapping_jar,
    parse_dependency_list,
    shipped_by_pyspark,
)

REAL_CACHE = jars.cache_dir()


@pytest.fixture
def spark_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the real spark set, so damaging it leaves the real cache alone."""
    jars.verify("spark")  # the real cache must be healthy to begin with
    shutil.copytree(REAL_CACHE / "spark", tmp_path / "spark")
    monkeypatch.setenv("PIPELINE_JAR_CACHE", str(tmp_path))
    return tmp_path / "spark"


def _fix_advice(message: str) -> None:
    assert "make jars" in message
    assert "python -m devkit.jars fetch" in message


def test_real_cache_verifies() -> None:
    for paths in (jars.verify("spark", full=True), jars.verify("broker", full=True)):
        assert paths and all(p.is_file() and p.suffix == ".jar" for p in paths)
    names = {p.name for p in jars.spark_jars()}
    assert {"delta-storage-4.4.0.jar", "spark-sql-kafka-0-10_2.13-4.2.0.jar"} <= names
    assert any(p.name.startswith("kafka_2.13-4.1.1") for p in jars.broker_classpath())


def test_missing_cache_says_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_JAR_CACHE", str(tmp_path / "nothing-here"))
    with pytest.raises(jars.JarCacheError) as info:
        jars.spark_jars()
    assert "not fetched" in str(info.value)
    assert str(tmp_path / "nothing-here") in str(info.value)
    _fix_advice(str(info.value))
    with pytest.raises(jars.JarCacheError):
        jars.broker_classpath()


def test_truncated_jar_is_detected(spark_copy: Path) -> None:
    assert jars.spark_jars()  # first call hashes and leaves a stat stamp
    victim = max(spark_copy.glob("*.jar"), key=lambda p: p.stat().st_size)
    with victim.open("r+b") as handle:
        handle.truncate(victim.stat().st_size // 2)
    with pytest.raises(jars.JarCacheError) as info:
        jars.spark_jars()
    assert victim.name in str(info.value) and "truncated" in str(info.value)
    _fix_advice(str(info.value))


def test_same_size_corruption_is_detected(spark_copy: Path) -> None:
    assert jars.spark_jars()
    victim = max(spark_copy.glob("*.jar"), key=lambda p: p.stat().st_size)
    before = victim.stat()
    with victim.open("r+b") as handle:
        handle.seek(before.st_size // 2)
        byte = handle.read(1)
        handle.seek(before.st_size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    # Restoring size and mtime does not hide it: the stamp also records ctime.
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(jars.JarCacheError, match="sha256"):
        jars.spark_jars()


def test_missing_jar_is_detected(spark_copy: Path) -> None:
    next(spark_copy.glob("delta-storage-*.jar")).unlink()
    with pytest.raises(jars.JarCacheError, match="missing"):
        jars.spark_jars()


def test_changed_pins_make_the_cache_stale(
    spark_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    newer = dataclasses.replace(
        jars.SPARK, coordinates=("io.delta:delta-spark_4.2_2.13:9.9.9", jars.SPARK_SQL_KAFKA)
    )
    monkeypatch.setitem(jars.JAR_SETS, "spark", newer)
    with pytest.raises(jars.JarCacheError, match="stale") as info:
        jars.spark_jars()
    _fix_advice(str(info.value))


def test_changed_resolution_inputs_make_the_cache_stale(spark_copy: Path) -> None:
    manifest_path = spark_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["inputs_sha256"] = "0" * 64  # as if fetched with another pom/pyspark
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(jars.JarCacheError, match="stale"):
        jars.spark_jars()


def test_fetch_is_a_no_op_when_the_cache_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_maven(*args: object, **kwargs: object) -> list[ResolvedArtifact]:
        raise AssertionError("fetch must not run Maven for a verified cache")

    monkeypatch.setattr(jars, "run_dependency_list", no_maven)
    out = io.StringIO()
    jars.fetch(out=out)
    assert out.getvalue().count("up to date") == len(jars.JAR_SETS)


def test_fetch_builds_a_verified_set_and_drops_what_pyspark_ships(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline: Maven's answer is simulated from the real cache plus pyspark duplicates."""
    real = json.loads((REAL_CACHE / "spark" / "manifest.json").read_text())
    pyspark_jars = jars.pyspark_jars_dir()
    assert pyspark_jars is not None
    scala = next(pyspark_jars.glob("scala-library-*.jar"))
    listing = [f"   org.scala-lang:scala-library:jar:2.13.17:compile:{scala}"]
    for entry in real["jars"]:
        group, artifact, version = entry["gav"].split(":")
        listing.append(
            f"   {group}:{artifact}:jar:{version}:compile:{REAL_CACHE / 'spark' / entry['file']}"
        )
    monkeypatch.setattr(
        jars, "run_dependency_list", lambda *a, **k: parse_dependency_list("\n".join(listing))
    )
    monkeypatch.setenv("PIPELINE_JAR_CACHE", str(tmp_path))
    jars.fetch(["spark"], out=io.StringIO())
    manifest = json.loads((tmp_path / "spark" / "manifest.json").read_text())
    assert [e["file"] for e in manifest["jars"]] == [e["file"] for e in real["jars"]]
    assert manifest["excluded"][0]["gav"] == "org.scala-lang:scala-library:2.13.17"
    assert [p.name for p in jars.spark_jars()] == [e["file"] for e in real["jars"]]


def test_parse_dependency_list() -> None:
    text = (
        "\nThe following files have been resolved:\n"
        "   org.apache.kafka:kafka-clients:jar:4.1.1:compile:/r/kafka-clients-4.1.1.jar"
        " -- module kafka.clients (auto)\n"
        "   io.netty:netty-transport-native-epoll:jar:linux-x86_64:4.1.118.Final:runtime:"
        "/r/netty-epoll.jar\n"
    )
    first, second = parse_dependency_list(text)
    assert first.gav == "org.apache.kafka:kafka-clients:4.1.1"
    assert first.path == Path("/r/kafka-clients-4.1.1.jar") and first.scope == "compile"
    assert second.classifier == "linux-x86_64" and second.version == "4.1.118.Final"


def test_shipped_by_pyspark_matches_artifact_ids_exactly() -> None:
    files = ["log4j-1.2-api-2.25.4.jar", "zstd-jni-1.5.7-7.jar", "scala-library-2.13.18.jar"]
    assert shipped_by_pyspark("log4j", files) is None
    assert shipped_by_pyspark("log4j-1.2-api", files) == "log4j-1.2-api-2.25.4.jar"
    assert shipped_by_pyspark("zstd-jni", files) == "zstd-jni-1.5.7-7.jar"
    assert shipped_by_pyspark("scala", files) is None


def test_spark_set_adds_no_class_pyspark_already_has() -> None:
    pyspark_jars = jars.pyspark_jars_dir()
    assert pyspark_jars is not None
    owners = class_owners(pyspark_jars)
    clashes = {p.name: overlapping_jar(p, owners) for p in jars.spark_jars()}
    assert {k: v for k, v in clashes.items() if v} == {}


def test_cli_path_and_verify() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_JAR_CACHE"}
    path = subprocess.run(
        [sys.executable, "-m", "devkit.jars", "path", "broker"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    entries = path.stdout.strip().split(":")
    assert entries == [str(p) for p in jars.broker_classpath()]
    verify = subprocess.run(
        [sys.executable, "-m", "devkit.jars", "verify"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert "spark: OK" in verify.stdout and "broker: OK" in verify.stdout


def test_cli_reports_missing_cache(tmp_path: Path) -> None:
    env = {**os.environ, "PIPELINE_JAR_CACHE": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "devkit.jars", "path", "spark"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1 and result.stdout == ""
    _fix_advice(result.stderr)
