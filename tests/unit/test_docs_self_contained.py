"""The repository explains itself: no tracked file cites a document a clone does not have.

What the code relies on (the record, the analyses, the generator, the design) is written
down under docs/. This test fails when a tracked text file points at the original design
notes or their numbered sections again, when a markdown link leads to a path that is not
in the repository, or when a `docs/<name>.md` or `README.md` reference names a missing file
or heading.
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Generated or third-party files, not written by this project.
EXCLUDED_PREFIXES = ("tests/data/", "schemas/")

# Spelled so that this file does not match its own patterns.
FORBIDDEN: dict[str, re.Pattern[str]] = {
    "the design notes outside the repository": re.compile(r"\bDESIGN\.md\b"),
    "a numbered seed document": re.compile(r"\bseeds? 0\d\d\b", re.IGNORECASE),
    "a section sign (section of an outside document)": re.compile("\u00a7"),
    "a path outside the repository": re.compile("/work/" + "shared"),
}

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
_DOC_REFERENCE = re.compile(r"(?<![\w/.-])((?:docs/[\w.-]+|README)\.md)(?:#([\w-]+))?")


@cache
def tracked_files() -> tuple[str, ...]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return tuple(sorted(p for p in out.decode().split("\0") if p))


@cache
def tracked_paths() -> frozenset[str]:
    """Tracked files and every directory that holds one."""
    paths: set[str] = set()
    for name in tracked_files():
        paths.add(name)
        parent = posixpath.dirname(name)
        while parent:
            paths.add(parent)
            parent = posixpath.dirname(parent)
    return frozenset(paths)


def text_files() -> list[tuple[str, str]]:
    files = []
    for name in tracked_files():
        if name.startswith(EXCLUDED_PREFIXES):
            continue
        path = ROOT / name
        if not path.is_file():  # deleted in the working tree, not yet in the index
            continue
        try:
            files.append((name, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue  # binary
    return files


def markdown_files() -> list[str]:
    return [name for name in tracked_files() if name.endswith(".md")
            and not name.startswith(EXCLUDED_PREFIXES)]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _prose(markdown: str) -> str:
    """The markdown without fenced code blocks and code spans."""
    return _CODE_SPAN.sub("x", _FENCE.sub("", markdown))


@cache
def anchors(name: str) -> frozenset[str]:
    text = (ROOT / name).read_text(encoding="utf-8")
    found: set[str] = set(_HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for heading in _HEADING.findall(_FENCE.sub("", text)):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(found)


def test_slugs_follow_github() -> None:
    assert _slug("Restarts, crashes and shutdown") == "restarts-crashes-and-shutdown"
    assert _slug("The `pipeline` CLI") == "the-pipeline-cli"
    assert _slug("`realtime_dashboard`") == "realtime_dashboard"
    assert _slug("Registry: event-sourced over a compacted topic") == (
        "registry-event-sourced-over-a-compacted-topic")


def test_no_file_cites_documents_outside_the_repository() -> None:
    problems = []
    for name, text in text_files():
        for number, line in enumerate(text.splitlines(), start=1):
            for what, pattern in FORBIDDEN.items():
                if pattern.search(line):
                    problems.append(f"{name}:{number}: {what}: {line.strip()[:100]}")
    assert not problems, (
        "describe what is meant under docs/ and point there instead:\n" + "\n".join(problems))


def test_markdown_links_stay_inside_the_repository() -> None:
    problems = []
    for name in markdown_files():
        text = _prose((ROOT / name).read_text(encoding="utf-8"))
        for target in _LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue  # http:, https:, mailto:
            path, _, anchor = target.partition("#")
            if not path:
                resolved = name
            else:
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), path))
                if resolved.startswith("../") or resolved not in tracked_paths():
                    problems.append(f"{name}: link to {target}: no such path in the repository")
                    continue
            if anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                problems.append(f"{name}: link to {target}: no heading #{anchor} in {resolved}")
    assert not problems, "\n".join(problems)


def test_docs_references_exist() -> None:
    problems = []
    for name, text in text_files():
        for doc, anchor in _DOC_REFERENCE.findall(text):
            if doc not in tracked_paths():
                problems.append(f"{name}: {doc} is not in the repository")
            elif anchor and anchor not in anchors(doc):
                problems.append(f"{name}: {doc} has no heading #{anchor}")
    assert not problems, "\n".join(problems)
