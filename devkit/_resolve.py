"""Maven resolution and pyspark de-duplication mechanics behind :mod:`devkit.jars`."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


class ResolutionError(RuntimeError):
    """Maven is missing or could not resolve the requested artifacts."""


@dataclass(frozen=True)
class ResolvedArtifact:
    group: str
    artifact: str
    version: str
    classifier: str
    kind: str
    scope: str
    path: Path

    @property
    def gav(self) -> str:
        extra = f":{self.classifier}" if self.classifier else ""
        return f"{self.group}:{self.artifact}{extra}:{self.version}"


def parse_dependency_list(text: str) -> list[ResolvedArtifact]:
    """Parse `dependency:list -DoutputAbsoluteArtifactFilename=true` output.

    Lines look like ``g:a:type[:classifier]:version:scope:/abs/path.jar [-- module x]``.
    """
    artifacts = []
    for raw in text.splitlines():
        line = raw.split(" -- module", 1)[0].strip()
        if ":/" not in line:
            continue
        coords, path = line.split(":/", 1)
        parts = coords.split(":")
        if len(parts) == 5:
            group, artifact, kind, version, scope = parts
            classifier = ""
        elif len(parts) == 6:
            group, artifact, kind, classifier, version, scope = parts
        else:
            raise ResolutionError(f"cannot parse Maven dependency line: {raw!r}")
        artifacts.append(
            ResolvedArtifact(group, artifact, version, classifier, kind, scope, Path("/" + path))
        )
    return artifacts


# A jar file name is "<artifactId>-<version>.jar"; the version may carry one "-suffix"
# (zstd-jni-1.5.7-7, guava-33.4.0-jre) but never a second word, which keeps
# "log4j-1.2-api-2.25.4.jar" from being mistaken for artifact "log4j".
_VERSION_TAIL = re.compile(r"-\d[0-9A-Za-z.+_]*(?:-[0-9A-Za-z.+_]+)?\.jar$")


def shipped_by_pyspark(artifact: str, shipped_files: Sequence[str]) -> str | None:
    """The pyspark jar file that already provides ``artifact`` (by artifactId), if any."""
    prefix = artifact + "-"
    for file_name in shipped_files:
        if file_name.startswith(prefix) and _VERSION_TAIL.fullmatch(file_name[len(artifact) :]):
            return file_name
    return None


# Every Spark module jar carries this one placeholder class; sharing it is harmless.
_BENIGN_CLASSES = frozenset({"org/apache/spark/unused/UnusedStubClass.class"})


def _class_names(jar: Path) -> set[str]:
    with zipfile.ZipFile(jar) as archive:
        return {
            name
            for name in archive.namelist()
            if name.endswith(".class")
            and not name.startswith("META-INF/")  # multi-release variants
            and not name.endswith("module-info.class")
            and name not in _BENIGN_CLASSES
        }


def class_owners(jars_dir: Path) -> dict[str, str]:
    """Map each class file in ``jars_dir`` to the jar file name that provides it."""
    owners: dict[str, str] = {}
    for jar in sorted(jars_dir.glob("*.jar")):
        for name in _class_names(jar):
            owners.setdefault(name, jar.name)
    return owners


def overlapping_jar(jar: Path, owners: dict[str, str]) -> str | None:
    """The pyspark jar already defining classes of ``jar``, if any.

    Catches what artifactId matching cannot: a different artifact with the same classes
    (commons-logging vs pyspark's jcl-over-slf4j, RoaringBitmap's shims). pyspark is the
    platform, so its copy wins.
    """
    hits = [owners[name] for name in _class_names(jar) if name in owners]
    return max(set(hits), key=hits.count) if hits else None


class _Progress:
    """Condensed Maven progress on stderr: a first resolution downloads hundreds of files."""

    def __init__(self, name: str, out: TextIO) -> None:
        self.name, self.out = name, out
        self.started = self.last = time.monotonic()
        self.files = 0

    def line(self, text: str) -> None:
        if "Downloaded from" in text:
            self.files += 1
        now = time.monotonic()
        if now - self.last >= 5:
            self.last = now
            print(
                f"  {self.name}: {self.files} files downloaded, {now - self.started:.0f}s",
                file=self.out,
                flush=True,
            )


def run_dependency_list(
    pom: Path, *, settings: Path, local_repo: Path, plugin: str, label: str, out: TextIO
) -> list[ResolvedArtifact]:
    """Resolve ``pom``'s compile+runtime dependencies; return them in Maven's (tree) order."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ResolutionError(
            "Maven (`mvn`) is not on PATH; it is needed once to fetch the JVM jars "
            "(Debian: apt-get install maven)"
        )
    listing = pom.parent / "dependencies.txt"
    command = [
        mvn,
        "-B",
        "-s",
        str(settings),
        "-f",
        str(pom),
        f"-Dmaven.repo.local={local_repo}",
        f"{plugin}:list",
        "-DincludeScope=runtime",  # compile + runtime; provided/test/system never resolved
        "-DoutputAbsoluteArtifactFilename=true",
        f"-DoutputFile={listing}",
        "-DappendOutput=false",
    ]
    progress = _Progress(label, out)
    log: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=pom.parent
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line.rstrip())
            progress.line(line)
    if proc.returncode != 0 or not listing.is_file():
        errors = [line for line in log if "[ERROR]" in line][:12] or log[-20:]
        raise ResolutionError(
            f"Maven could not resolve the '{label}' jar set (exit {proc.returncode}):\n"
            + "\n".join(errors)
        )
    return parse_dependency_list(listing.read_text(encoding="utf-8"))
