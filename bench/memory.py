"""Peak resident memory of a process tree (the worker's Python driver and its JVM).

Measured as PSS (proportional set size) where the OS reports it: the JVM now and then forks
a short-lived child (a bench run caught one, named after the forking JVM thread, with the
JVM's whole RSS), and until it execs, the child maps all of the JVM's pages. Summed RSS
counted those shared pages twice (runs reported "peaks" of 4.9 and 7 GB that way); PSS
splits each shared page between the processes that map it.
"""

from __future__ import annotations

import threading
import time

import psutil


def tree_rss(pid: int) -> tuple[int, int, int, list[tuple[str, int]]]:
    """(total, python, jvm-and-other) resident bytes of `pid` and its descendants, and
    (name, rss) of each process."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0, 0, []
    own = other = 0
    parts: list[tuple[str, int]] = []
    for proc in procs:
        try:
            rss = _resident(proc)
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        parts.append((f"{name}[{proc.pid}]", rss))
        if proc.pid == pid:
            own += rss
        else:
            other += rss
    return own + other, own, other, parts


def _resident(proc: psutil.Process) -> int:
    try:
        return int(proc.memory_full_info().pss)
    except (AttributeError, psutil.AccessDenied):
        return int(proc.memory_info().rss)


class RssSampler:
    """Samples the tree every `interval` seconds; peaks overall and per named phase."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self._pid: int | None = None
        self._phase = "start-up"
        self.peak = 0
        self.peak_python = 0
        self.peak_jvm = 0
        self.by_phase: dict[str, int] = {}
        self.peak_parts: list[tuple[str, int]] = []
        self.samples = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()

    def watch(self, pid: int | None) -> None:
        with self._lock:
            self._pid = pid

    def phase(self, name: str) -> None:
        with self._lock:
            self._phase = name

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                pid, phase = self._pid, self._phase
            if pid is None:
                continue
            total, python, jvm, parts = tree_rss(pid)
            if not total:
                continue
            with self._lock:
                self.samples += 1
                if total > self.peak:
                    self.peak_parts = parts
                self.peak = max(self.peak, total)
                self.peak_python = max(self.peak_python, python)
                self.peak_jvm = max(self.peak_jvm, jvm)
                self.by_phase[phase] = max(self.by_phase.get(phase, 0), total)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def report(self) -> dict[str, object]:
        mib = 1024 * 1024
        with self._lock:
            return {
                "peak_rss_mib": round(self.peak / mib, 1),
                "peak_python_mib": round(self.peak_python / mib, 1),
                "peak_jvm_mib": round(self.peak_jvm / mib, 1),
                "peak_by_phase_mib": {k: round(v / mib, 1) for k, v in self.by_phase.items()},
                "peak_processes_mib": {n: round(v / mib, 1) for n, v in self.peak_parts},
                "samples": self.samples,
                "interval_s": self.interval,
                "at": time.time(),
            }
