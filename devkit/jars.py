"""Pinned JVM artifacts, resolved once from Maven Central into a project-local cache.

Two independent jar sets, each in its own sub-directory of the cache with a manifest.json:

- ``spark``:  Delta Lake + the Spark Kafka source, handed to Spark via ``spark.jars``. Every
  artifact pyspark already ships in its own ``jars/`` directory is left out, so the driver never
  sees two versions of scala-library, jackson, slf4j, hadoop, parquet, ...
- ``broker``: the complete runtime classpath of a Kafka broker (``kafka.Kafka``) plus the log4j2
  SLF4J binding it needs to log anything.

Resolution runs Maven once (``python -m devkit.jars fetch``, i.e. ``make jars``); afterwards
everything is read from disk, so the worker and the broker start offline and deterministically.
Readers (:func:`spark_jars`, :func:`broker_classpath`) verify the manifest and raise
:class:`JarCacheError` with the fixing command instead of letting the JVM fail obscurely.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from devkit._resolve import (
    ResolutionError,
    ResolvedArtifact,
    class_owners,
    overlapping_jar,
    run_dependency_list,
    shipped_by_pyspark,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
_HERE = Path(__file__).resolve().parent
POM_TEMPLATE = _HERE / "jar-set-pom.xml"
MAVEN_SETTINGS = _HERE / "maven-settings.xml"

# Pinned by full coordinates rather than relying on the project pom's default plugin version
# (Maven 3.8 defaults to dependency-plugin 2.8, which lacks outputAbsoluteArtifactFilename).
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

FIX_COMMAND = "make jars"
FIX_COMMAND_LONG = "`make jars` (equivalently `python -m devkit.jars fetch`)"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class JarSet:
    """One pinned set of Maven artifacts and how to turn it into a classpath."""

    name: str
    purpose: str
    coordinates: tuple[str, ...]
    # Versions forced onto transitive dependencies (Maven dependencyManagement).
    managed: tuple[str, ...] = ()
    # Drop artifacts that pyspark already ships (avoids duplicate classes on the driver).
    exclude_pyspark_shipped: bool = False


# The stack pins delta-spark 4.4.1 / delta-storage 4.4.1, but Maven Central as reachable from
# these machines only has io.delta:delta-spark_4.2_2.13:4.4.0 (and delta-storage 4.4.0): 4.4.1
# returns 404. 4.4.0 is the newest Delta build for Spark 4.2; the delta-spark 4.4.1 *wheel* is
# only a Python wrapper over these JVM classes.
DELTA_SPARK = "io.delta:delta-spark_4.2_2.13:4.4.0"
SPARK_SQL_KAFKA = "org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0"
# spark-sql-kafka 4.2.0 depends on spark-token-provider-kafka-0-10 4.2.0, which is missing from
# the reachable Maven Central (so are 4.0.1 ... 4.2.0). The module's sources are byte-identical
# from 4.0.0 to 4.1.0-preview1, and every member spark-sql-kafka 4.2.0 references resolves in the
# 4.0.0 jar; its only reference Spark 4.2 no longer has (LogKeys.CLUSTER_ID as a Scala object) is
# on the warning path of a failed Kerberos delegation-token fetch. See devkit/README-notes.md.
TOKEN_PROVIDER = "org.apache.spark:spark-token-provider-kafka-0-10_2.13:4.0.0"
# delta-kernel-api asks for jackson-datatype-jdk8 2.13.5, but the driver runs pyspark's jackson
# 2.21.2 (core/databind are excluded below as pyspark ships them); keep the module in step.
JACKSON_JDK8 = "com.fasterxml.jackson.datatype:jackson-datatype-jdk8:2.21.2"
KAFKA_BROKER = "org.apache.kafka:kafka_2.13:4.1.1"
# kafka_2.13 depends on slf4j-api 1.7 and log4j-core but not on a binding between them (the
# Kafka distribution adds it outside the pom); without it the broker logs nothing at all.
# log4j-slf4j-impl is the SLF4J 1.x binding, versioned with the log4j-core the pom brings.
LOG4J_SLF4J_BINDING = "org.apache.logging.log4j:log4j-slf4j-impl:2.24.3"

SPARK = JarSet(
    name="spark",
    purpose="Delta Lake + Kafka source for spark.jars",
    coordinates=(DELTA_SPARK, SPARK_SQL_KAFKA),
    managed=(TOKEN_PROVIDER, JACKSON_JDK8),
    exclude_pyspark_shipped=True,
)
BROKER = JarSet(
    name="broker",
    purpose="classpath of the local KRaft broker",
    coordinates=(KAFKA_BROKER, LOG4J_SLF4J_BINDING),
)
JAR_SETS: dict[str, JarSet] = {s.name: s for s in (SPARK, BROKER)}


class JarCacheError(RuntimeError):
    """The jar cache is missing, damaged or stale; the message says how to fix it."""

    def __init__(self, message: str, problem: str | None = None) -> None:
        super().__init__(message)
        # The short diagnosis without the fix advice, for `fetch` progress output.
        self.problem = problem or message


# --------------------------------------------------------------------------------------------
# Locations


def cache_dir() -> Path:
    """Root of the jar cache; read at call time so tests can point it elsewhere."""
    env = os.environ.get("PIPELINE_JAR_CACHE")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / ".cache" / "jars"


def maven_repo_dir() -> Path:
    """Project-local Maven repository, so nothing is written to ~/.m2."""
    return REPO_ROOT / ".cache" / "m2"


def set_dir(name: str) -> Path:
    return cache_dir() / name


def pyspark_jars_dir() -> Path | None:
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "jars"


def _pyspark_version() -> str | None:
    try:
        return importlib.metadata.version("pyspark")
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------------------------
# Inputs fingerprint: anything that changes what a fetch would produce makes the cache stale.


def _dependency_xml(coordinates: Sequence[str], indent: str) -> str:
    blocks = []
    for coordinate in coordinates:
        group, artifact, version = _split_coordinate(coordinate)
        blocks.append(
            f"{indent}<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version></dependency>"
        )
    return "\n".join(blocks)


def _split_coordinate(coordinate: str) -> tuple[str, str, str]:
    parts = coordinate.split(":")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"expected group:artifact:version, got {coordinate!r}")
    return parts[0], parts[1], parts[2]


def render_pom(jar_set: JarSet) -> str:
    template = POM_TEMPLATE.read_text(encoding="utf-8")
    return (
        template.replace("@SET@", jar_set.name)
        .replace("@DEPENDENCY_MANAGEMENT@", _dependency_xml(jar_set.managed, " " * 6))
        .replace("@DEPENDENCIES@", _dependency_xml(jar_set.coordinates, " " * 4))
    )


def inputs_fingerprint(jar_set: JarSet) -> str:
    digest = hashlib.sha256()
    digest.update(render_pom(jar_set).encode())
    digest.update(MAVEN_SETTINGS.read_bytes())
    digest.update(DEPENDENCY_PLUGIN.encode())
    if jar_set.exclude_pyspark_shipped:
        # A different pyspark ships different jars, so the exclusion list would differ.
        digest.update(f"pyspark={_pyspark_version()}".encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Verification


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stat_key(path: Path) -> list[int]:
    # ctime cannot be set from user space, so an in-place rewrite is noticed even if the
    # writer restores size and mtime; only a changed key triggers re-hashing.
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _error(name: str, problem: str) -> JarCacheError:
    return JarCacheError(
        f"JVM jar cache '{name}' ({JAR_SETS[name].purpose}) at {set_dir(name)}: {problem}. "
        f"Fix: run {FIX_COMMAND_LONG}; it resolves the pinned artifacts from Maven Central.",
        problem,
    )


def _load_manifest(name: str) -> dict[str, Any]:
    manifest_path = set_dir(name) / "manifest.json"
    if not manifest_path.is_file():
        raise _error(name, "not fetched yet (no manifest.json)")
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _error(name, f"manifest.json is unreadable ({exc})") from exc
    return manifest


def _check_pins(name: str, manifest: dict[str, Any]) -> None:
    jar_set = JAR_SETS[name]
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("set") != name:
        raise _error(name, "manifest.json has an unknown format; it is stale")
    pinned = {"coordinates": list(jar_set.coordinates), "managed": list(jar_set.managed)}
    for key, expected in pinned.items():
        if manifest.get(key) != expected:
            raise _error(
                name,
                f"stale: fetched for {key} {manifest.get(key)} but devkit/jars.py pins {expected}",
            )
    if manifest.get("inputs_sha256") != inputs_fingerprint(jar_set):
        found = manifest.get("pyspark_version")
        detail = (
            f" (fetched against pyspark {found}, installed is {_pyspark_version()})"
            if jar_set.exclude_pyspark_shipped and found != _pyspark_version()
            else " (the pom template, Maven settings or plugin version changed)"
        )
        raise _error(name, "stale: resolution inputs changed since the fetch" + detail)


def verify(name: str, *, full: bool = False) -> list[Path]:
    """Return the set's classpath (manifest order) after checking it; raise JarCacheError.

    A full check hashes every jar. Afterwards a stamp of (size, mtime, ctime, inode) per file
    lets later calls skip hashing while nothing touched the files; ``full=True`` always hashes.
    """
    if name not in JAR_SETS:
        raise ValueError(f"unknown jar set {name!r}; expected one of {sorted(JAR_SETS)}")
    manifest = _load_manifest(name)
    _check_pins(name, manifest)
    directory = set_dir(name)
    entries: list[dict[str, Any]] = manifest.get("jars") or []
    if not entries:
        raise _error(name, "manifest.json lists no jars")
    paths = [directory / entry["file"] for entry in entries]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise _error(name, f"{len(missing)} jar(s) missing, e.g. {missing[0]}")

    stamp_path = directory / ".verified.json"
    manifest_digest = _sha256(directory / "manifest.json")
    keys = {p.name: _stat_key(p) for p in paths}
    if not full:
        with contextlib.suppress(OSError, ValueError):
            stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
            if stamp.get("manifest_sha256") == manifest_digest and stamp.get("files") == keys:
                return paths

    for entry, path in zip(entries, paths, strict=True):
        size = path.stat().st_size
        if size != entry["size"]:
            raise _error(
                name, f"{path.name} is {size} bytes, expected {entry['size']} (truncated?)"
            )
        if _sha256(path) != entry["sha256"]:
            raise _error(name, f"{path.name} does not match its sha256 (corrupt)")
    # Best effort: a read-only cache still verifies, it just re-hashes next time.
    with contextlib.suppress(OSError):
        stamp_path.write_text(
            json.dumps({"manifest_sha256": manifest_digest, "files": keys}), encoding="utf-8"
        )
    return paths


def spark_jars() -> list[Path]:
    """Jars to pass as ``spark.jars`` (Delta + Kafka source, minus what pyspark ships)."""
    return verify("spark")


def broker_classpath() -> list[Path]:
    """Complete classpath of the local Kafka broker."""
    return verify("broker")


# --------------------------------------------------------------------------------------------
# Fetching


def _run_maven(jar_set: JarSet, work: Path, out: TextIO) -> list[ResolvedArtifact]:
    pom = work / "pom.xml"
    pom.write_text(render_pom(jar_set), encoding="utf-8")
    try:
        return run_dependency_list(
            pom,
            settings=MAVEN_SETTINGS,
            local_repo=maven_repo_dir(),
            plugin=DEPENDENCY_PLUGIN,
            label=jar_set.name,
            out=out,
        )
    except ResolutionError as exc:
        raise JarCacheError(f"{exc}\nOnce that is fixed, re-run {FIX_COMMAND_LONG}.") from exc


def _resolve(jar_set: JarSet, out: TextIO) -> None:
    root = cache_dir()
    work = root / ".work" / jar_set.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pins = " + ".join(jar_set.coordinates)
    print(f"[devkit.jars] resolving '{jar_set.name}' jar set: {pins}", file=out, flush=True)
    started = time.monotonic()
    artifacts = _run_maven(jar_set, work, out)

    shipped: list[str] = []
    owners: dict[str, str] = {}
    if jar_set.exclude_pyspark_shipped:
        jars_dir = pyspark_jars_dir()
        if jars_dir is None or not jars_dir.is_dir():
            raise JarCacheError(
                "pyspark is not installed in this interpreter; the spark jar set is resolved "
                "against pyspark's bundled jars. Install the project (pip install -e .) first."
            )
        shipped = sorted(p.name for p in jars_dir.glob("*.jar"))
        owners = class_owners(jars_dir)

    staging = root / f".{jar_set.name}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    kept: list[dict[str, Any]] = []
    excluded: list[dict[str, str]] = []
    for item in artifacts:
        if item.kind not in ("jar", "bundle"):
            excluded.append({"gav": item.gav, "reason": f"packaging {item.kind}"})
            continue
        provided_by = shipped_by_pyspark(item.artifact, shipped) if shipped else None
        if provided_by:
            excluded.append({"gav": item.gav, "reason": f"pyspark ships {provided_by}"})
            continue
        clash = overlapping_jar(item.path, owners) if owners else None
        if clash:
            excluded.append({"gav": item.gav, "reason": f"classes already in pyspark's {clash}"})
            continue
        target = staging / item.path.name
        if target.exists():  # same file name from two groups: disambiguate, never overwrite
            target = staging / f"{item.group}.{item.path.name}"
        shutil.copyfile(item.path, target)
        kept.append(
            {
                "file": target.name,
                "gav": item.gav,
                "scope": item.scope,
                "size": target.stat().st_size,
                "sha256": _sha256(target),
            }
        )
    manifest = {
        "format": MANIFEST_FORMAT,
        "set": jar_set.name,
        "coordinates": list(jar_set.coordinates),
        "managed": list(jar_set.managed),
        "inputs_sha256": inputs_fingerprint(jar_set),
        "pyspark_version": _pyspark_version() if jar_set.exclude_pyspark_shipped else None,
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "jars": kept,
        "excluded": excluded,
    }
    # The manifest is written last and the directory swapped in whole, so an interrupted
    # fetch leaves either the old set or no set, never a half-filled one that verifies.
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    final = set_dir(jar_set.name)
    old = root / f".{jar_set.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    size_mb = sum(int(entry["size"]) for entry in kept) / 1e6
    print(
        f"[devkit.jars] '{jar_set.name}': {len(kept)} jars ({size_mb:.1f} MB), "
        f"{len(excluded)} excluded, {time.monotonic() - started:.0f}s -> {final}",
        file=out,
        flush=True,
    )
    verify(jar_set.name, full=True)


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    # Two concurrent fetches (e.g. parallel make targets) would swap directories under each
    # other; serialise them on a lock file in the cache root.
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch(
    names: Sequence[str] | None = None, *, force: bool = False, out: TextIO = sys.stderr
) -> None:
    """Resolve the jar sets unless they already verify (or ``force``)."""
    selected = list(names) if names else list(JAR_SETS)
    with _cache_lock():
        for name in selected:
            if not force:
                try:
                    paths = verify(name, full=True)
                except JarCacheError as exc:
                    print(f"[devkit.jars] '{name}' needs fetching: {exc.problem}", file=out)
                else:
                    print(
                        f"[devkit.jars] '{name}' is up to date ({len(paths)} jars)",
                        file=out,
                        flush=True,
                    )
                    continue
            _resolve(JAR_SETS[name], out)


# --------------------------------------------------------------------------------------------
# CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.jars", description="Pinned JVM jars in a project-local cache."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = sub.add_parser("fetch", help="resolve the pinned jars (no-op if they verify)")
    fetch_cmd.add_argument("--force", action="store_true", help="resolve even if up to date")
    fetch_cmd.add_argument("--set", choices=sorted(JAR_SETS), action="append", dest="sets")
    sub.add_parser("verify", help="hash every jar against the manifests")
    path_cmd = sub.add_parser("path", help="print a set's classpath, ':'-joined")
    path_cmd.add_argument("set", choices=sorted(JAR_SETS))
    args = parser.parse_args(argv)

    try:
        if args.command == "fetch":
            fetch(args.sets, force=args.force)
        elif args.command == "verify":
            failed = False
            for name in JAR_SETS:
                try:
                    paths = verify(name, full=True)
                except JarCacheError as exc:
                    failed = True
                    print(str(exc), file=sys.stderr)
                else:
                    size_mb = sum(p.stat().st_size for p in paths) / 1e6
                    print(f"{name}: OK ({len(paths)} jars, {size_mb:.1f} MB)")
            return 1 if failed else 0
        else:
            print(":".join(str(p) for p in verify(args.set)))
    except JarCacheError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
