"""A real single-node Apache Kafka broker (KRaft, combined broker + controller), no Docker.

The broker runs from the jars resolved by :mod:`devkit.jars` (``broker`` set) as a detached JVM
(``java -cp ... kafka.Kafka server.properties``) and keeps everything under
``<data_dir>/kafka``::

    data/            log.dirs (topic partitions + the KRaft metadata log)
    logs/            broker.out (JVM stdout/stderr), server.log, controller.log
    server.properties  regenerated on every start from the bootstrap address and state.json
    state.json       cluster id + controller port, so restarts reuse the formatted storage
    broker.pid       pid of the running broker (absent when stopped)

It listens (PLAINTEXT) exactly at the bootstrap address and advertises it; the controller
listener uses another port on the same host.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from devkit.jars import broker_classpath

LOG4J2_CONFIG = Path(__file__).resolve().parent / "broker-log4j2.properties"
DEFAULT_BOOTSTRAP = "localhost:9092"
DEFAULT_DATA_DIR = "./data"
NODE_ID = 1

# librdkafka reports every refused connection; probes of a broker that is still starting
# would flood the terminal, so its log goes to a silent logger.
_QUIET = logging.getLogger("devkit.broker.librdkafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False

# Popen handles of brokers started by this process, kept so they can be reaped (no zombies
# that look alive to a pid check, no "still running" ResourceWarning).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class BrokerError(RuntimeError):
    """The broker could not be started/stopped; the message says why and what to do."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool  # something accepts Kafka connections at bootstrap
    managed: bool  # it is our broker (pid file present and process alive)
    pid: int | None
    bootstrap: str
    data_dir: Path  # <data_dir>/kafka


@dataclass(frozen=True)
class _Paths:
    root: Path

    @classmethod
    def of(cls, data_dir: Path | str) -> _Paths:
        return cls(Path(data_dir).expanduser().resolve() / "kafka")

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def out_log(self) -> Path:
        return self.logs / "broker.out"

    @property
    def properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def pid(self) -> Path:
        return self.root / "broker.pid"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"


# --------------------------------------------------------------------------------------------
# Probing


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    """Split "host:port" (IPv6 as "[::1]:9092"); the local broker has exactly one address."""
    match = re.fullmatch(r"\s*(\[[0-9A-Fa-f:.]+\]|[^\s:,\[\]]+):(\d{1,5})\s*", bootstrap)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"bootstrap must be a single host:port, got {bootstrap!r}")
    return match.group(1), int(match.group(2))


def _socket_host(host: str) -> str:
    return host.strip("[]")


def _cluster_id_at(bootstrap: str, timeout: float) -> str | None:
    """Cluster id reported by a Kafka metadata request at ``bootstrap``; None if no answer."""
    host, port = parse_bootstrap(bootstrap)
    # A refused TCP connect is the common "nothing there" case: answer it quickly and quietly.
    try:
        socket.create_connection((_socket_host(host), port), timeout=min(timeout, 1.0)).close()
    except OSError:
        return None
    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "socket.timeout.ms": max(int(timeout * 1000), 100),
            "logger": _QUIET,
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return None
    return metadata.cluster_id or ""


def is_reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    """True if a Kafka broker answers a metadata request at ``bootstrap`` (not just TCP)."""
    return _cluster_id_at(bootstrap, timeout) is not None


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # Same option the JVM sets, so a port in TIME_WAIT after a stop counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((_socket_host(host), port))
        except OSError:
            return False
    return True


def _any_free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((_socket_host(host), 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# Process bookkeeping


def _read_pid(paths: _Paths) -> int | None:
    try:
        return int(paths.pid.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def _reap(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.poll()


def _managed_process(paths: _Paths) -> psutil.Process | None:
    """Our broker's process if the pid file names a live JVM running this data dir's config."""
    pid = _read_pid(paths)
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            _reap(pid)
            return None
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    # The pid may have been reused by an unrelated process after a crash or reboot.
    if "kafka.Kafka" not in cmdline or str(paths.properties) not in cmdline:
        return None
    return proc


def _wait_exit(proc: psutil.Process, timeout: float) -> bool:
    child = _CHILDREN.get(proc.pid)
    try:
        if child is not None:
            child.wait(timeout)
            _CHILDREN.pop(proc.pid, None)
        else:
            proc.wait(timeout)
    except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
        return False
    except psutil.NoSuchProcess:
        pass
    return True


@contextlib.contextmanager
def _locked(paths: _Paths) -> Iterator[None]:
    # start/stop from two processes at once (CLI + test fixture) must not race on the pid file.
    paths.root.mkdir(parents=True, exist_ok=True)
    with paths.lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _log_tail(paths: _Paths, lines: int = 25) -> str:
    parts = []
    for log in (paths.out_log, paths.logs / "server.log"):
        with contextlib.suppress(OSError):
            text = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            if text:
                parts.append(f"--- last lines of {log} ---\n" + "\n".join(text))
    return "\n".join(parts) or f"(no broker log under {paths.logs})"


# --------------------------------------------------------------------------------------------
# Configuration and storage


def _new_cluster_id() -> str:
    # Kafka's Uuid.randomUuid().toString(): URL-safe base64 of 16 random bytes, unpadded; like
    # Kafka, avoid a leading "-" (it would read as a command-line option).
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):
            return value


def _formatted_cluster_id(paths: _Paths) -> str | None:
    with contextlib.suppress(OSError):
        for line in (paths.data / "meta.properties").read_text(encoding="utf-8").splitlines():
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
    return None


def _prepare_state(paths: _Paths, host: str, port: int) -> dict[str, object]:
    state: dict[str, object] = {}
    with contextlib.suppress(OSError, ValueError):
        state = json.loads(paths.state.read_text(encoding="utf-8"))
    cluster_id = _formatted_cluster_id(paths) or state.get("cluster_id") or _new_cluster_id()
    previous = state.get("controller_port")
    controller_port = previous if isinstance(previous, int) else None
    if controller_port is None or controller_port == port or not _port_free(host, controller_port):
        wanted = port + 1
        new_port = wanted if wanted < 65536 and _port_free(host, wanted) else _any_free_port(host)
        if controller_port is not None:
            # Safe: the quorum is static (controller.quorum.voters), no endpoint is persisted.
            print(f"controller port {controller_port} is taken, using {new_port}", file=sys.stderr)
        controller_port = new_port
    state = {
        "cluster_id": cluster_id,
        "controller_port": controller_port,
        "node_id": NODE_ID,
        "bootstrap": f"{host}:{port}",
    }
    paths.state.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    return state


def _server_properties(paths: _Paths, host: str, port: int, controller_port: int) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        # A static single-voter quorum: unlike `format --standalone` (dynamic quorum) the
        # controller endpoint is not written into the metadata log, so the port may change.
        "controller.quorum.voters": f"{NODE_ID}@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": paths.data,
        # One node: every internal topic must be satisfiable with a single replica.
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        # The default 50 partitions of __consumer_offsets make the first group join take
        # seconds on a 2-core machine for no benefit on one node.
        "offsets.topic.num.partitions": 1,
        "transaction.state.log.num.partitions": 1,
        "num.partitions": 1,
        # Consumers in tests and CLIs join immediately instead of after 3 s.
        "group.initial.rebalance.delay.ms": 0,
        # Thread pools sized for a small machine.
        "num.network.threads": 2,
        "num.io.threads": 2,
        "background.threads": 2,
        "num.recovery.threads.per.data.dir": 1,
        "log.cleaner.threads": 1,
    }
    lines = ["# Generated by devkit.broker on every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is not None and candidate.is_file():
        return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise BrokerError("`java` (17+) is not on PATH and JAVA_HOME is not set")
    return found


def _jvm_base(java: str, paths: _Paths, heap: str) -> list[str]:
    return [
        java,
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={paths.logs}",
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        "-cp",
        os.pathsep.join(str(p) for p in broker_classpath()),
    ]


def _format_storage(java: str, paths: _Paths, cluster_id: str) -> None:
    """`kafka-storage format` once; formatted storage is reused across restarts."""
    if (paths.data / "meta.properties").is_file():
        return
    print(f"formatting KRaft storage in {paths.data} (cluster id {cluster_id})", file=sys.stderr)
    command = [
        *_jvm_base(java, paths, "256m"),
        "kafka.tools.StorageTool",
        "format",
        "--cluster-id",
        cluster_id,
        "--config",
        str(paths.properties),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=paths.root, check=False
    )
    if result.returncode != 0:
        raise BrokerError(
            f"formatting Kafka storage failed (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr}".rstrip()
        )


# --------------------------------------------------------------------------------------------
# Public API


def status(bootstrap: str, data_dir: Path) -> BrokerStatus:
    paths = _Paths.of(data_dir)
    proc = _managed_process(paths) if paths.root.is_dir() else None
    return BrokerStatus(
        running=is_reachable(bootstrap),
        managed=proc is not None,
        pid=proc.pid if proc is not None else None,
        bootstrap=bootstrap,
        data_dir=paths.root,
    )


def _wait_until_reachable(
    pid: int, bootstrap: str, paths: _Paths, cluster_id: str, timeout: float
) -> None:
    started = time.monotonic()
    deadline = started + timeout
    next_note = started  # first note as soon as the first probe fails, then every 10 s
    while True:
        child = _CHILDREN.get(pid)
        if child is not None:
            # Our own child: ask it directly. Right after exec, /proc may still show an
            # empty command line, which the pid-file check would take for a dead broker.
            proc = psutil.Process(pid) if child.poll() is None else None
        else:
            proc = _managed_process(paths)
        if proc is None:
            raise BrokerError(
                f"the Kafka broker exited during start-up (see {paths.logs}).\n{_log_tail(paths)}"
            )
        answered = _cluster_id_at(bootstrap, 1.0)
        if answered is not None:
            if answered != cluster_id:
                raise BrokerError(
                    f"a different Kafka cluster ({answered}) answers at {bootstrap}, "
                    f"not ours ({cluster_id})"
                )
            return
        now = time.monotonic()
        if now >= deadline:
            proc.kill()
            _wait_exit(proc, 10)
            paths.pid.unlink(missing_ok=True)
            raise BrokerError(
                f"Kafka did not answer at {bootstrap} within {timeout:.0f}s; killed it.\n"
                f"{_log_tail(paths)}"
            )
        if now >= next_note:
            next_note = now + 10
            print(
                f"waiting for Kafka at {bootstrap} ({now - started:.0f}s; pid {pid}, "
                f"logs in {paths.logs})",
                file=sys.stderr,
            )
        time.sleep(0.3)


def start(
    bootstrap: str, data_dir: Path, *, timeout: float = 90.0, heap: str = "768m"
) -> BrokerStatus:
    """Start our broker (idempotent) and return once it answers Kafka requests."""
    host, port = parse_bootstrap(bootstrap)
    if not re.fullmatch(r"\d+[kKmMgG]?", heap):
        raise ValueError(f"heap must look like 512m or 1g, got {heap!r}")
    paths = _Paths.of(data_dir)
    with _locked(paths):
        running = _managed_process(paths)
        if running is not None:
            # Ours already: it may still be starting (another process launched it).
            state = json.loads(paths.state.read_text(encoding="utf-8"))
            if state.get("bootstrap") != f"{host}:{port}":
                raise BrokerError(
                    f"the broker of {paths.root} (pid {running.pid}) runs at "
                    f"{state.get('bootstrap')}, not {bootstrap}; stop it first"
                )
            _wait_until_reachable(running.pid, bootstrap, paths, str(state["cluster_id"]), timeout)
            return status(bootstrap, data_dir)

        answered = _cluster_id_at(bootstrap, 2.0)
        if answered is not None:
            raise BrokerError(
                f"another Kafka broker (cluster id {answered}) already answers at {bootstrap}; "
                f"it was not started from {paths.root}. Stop it or choose another "
                "PIPELINE_KAFKA_BOOTSTRAP."
            )
        if not _port_free(host, port):
            raise BrokerError(
                f"{bootstrap} is taken by something that does not answer as a Kafka broker; "
                "free the port or choose another PIPELINE_KAFKA_BOOTSTRAP."
            )

        java = _java()
        broker_classpath()  # a missing/damaged jar cache fails here with its fix command
        paths.pid.unlink(missing_ok=True)
        paths.logs.mkdir(parents=True, exist_ok=True)
        state = _prepare_state(paths, host, port)
        controller_port = int(str(state["controller_port"]))
        paths.properties.write_text(
            _server_properties(paths, host, port, controller_port), encoding="utf-8"
        )
        _format_storage(java, paths, str(state["cluster_id"]))

        command = [*_jvm_base(java, paths, heap), "kafka.Kafka", str(paths.properties)]
        with paths.out_log.open("ab") as out:
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=paths.root,
                # Own session: the broker outlives this process and ignores its Ctrl-C.
                start_new_session=True,
            )
        _CHILDREN[child.pid] = child
        paths.pid.write_text(f"{child.pid}\n", encoding="utf-8")
        _wait_until_reachable(child.pid, bootstrap, paths, str(state["cluster_id"]), timeout)
    return status(bootstrap, data_dir)


def stop(data_dir: Path, *, timeout: float = 30.0) -> bool:
    """Stop our broker: SIGTERM (clean shutdown), SIGKILL after ``timeout``.

    True if it stopped a running broker.
    """
    paths = _Paths.of(data_dir)
    if not paths.root.is_dir():
        return False
    with _locked(paths):
        proc = _managed_process(paths)
        if proc is None:
            paths.pid.unlink(missing_ok=True)
            return False
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
        if not _wait_exit(proc, timeout):
            print(
                f"Kafka (pid {proc.pid}) ignored SIGTERM for {timeout:.0f}s; killing it",
                file=sys.stderr,
            )
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
            _wait_exit(proc, 10)
        paths.pid.unlink(missing_ok=True)
        return True


# --------------------------------------------------------------------------------------------
# CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.broker", description="Local single-node KRaft Kafka broker."
    )
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("PIPELINE_KAFKA_BOOTSTRAP", DEFAULT_BOOTSTRAP),
        help="host:port to listen at (env PIPELINE_KAFKA_BOOTSTRAP, default %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("PIPELINE_DATA_DIR", DEFAULT_DATA_DIR)),
        help="the broker keeps its files in DATA_DIR/kafka (env PIPELINE_DATA_DIR)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait")
    parser.add_argument("--heap", default="768m", help="broker JVM -Xmx (start only)")
    args = parser.parse_args(argv)

    try:
        if args.command == "start":
            result = start(
                args.bootstrap, args.data_dir, timeout=args.timeout or 90.0, heap=args.heap
            )
            print(
                f"Kafka broker running (pid {result.pid}), data in {result.data_dir}",
                file=sys.stderr,
            )
            print(result.bootstrap)
        elif args.command == "stop":
            stopped = stop(args.data_dir, timeout=args.timeout or 30.0)
            print("stopped" if stopped else "not running (nothing to stop)")
        else:
            current = status(args.bootstrap, args.data_dir)
            reach = "running" if current.running else "not reachable"
            owner = f"managed, pid {current.pid}" if current.managed else "not managed by us"
            print(f"{current.bootstrap}: {reach} ({owner}); data in {current.data_dir}")
    except (BrokerError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
