# syntax=docker/dockerfile:1
# The worker image: Python 3.11, Java 17 for the Spark driver, and the project with its
# Spark/Delta/Kafka jars resolved at build time, so the container starts offline.
#
#   docker build -t kafka-pipeline-worker:local .
#   docker compose up -d --build          (see docker-compose.yml)
#
# Two stages: `build` has Maven and resolves the jars; the final image has neither Maven nor
# its local repository, only the venv and the project with its verified jar cache.

# bookworm: the Debian release that ships openjdk-17 (the stack pins Java 17: docs/design.md).
FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIPELINE_DATA_DIR=/data

# The JRE's postinst links man pages into a directory slim images do not have.
# tini is PID 1: it forwards SIGTERM to the worker (graceful shutdown) and reaps the JVM.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps tini \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app \
    && mkdir -p /app /data /opt/venv \
    && chown app:app /app /data /opt/venv
WORKDIR /app


FROM base AS build

RUN apt-get update \
    && apt-get install -y --no-install-recommends maven \
    && rm -rf /var/lib/apt/lists/*
USER app
RUN python -m venv /opt/venv

# Dependencies first (the heavy layer: pyspark, delta-spark), cached until pyproject changes.
COPY --chown=app:app pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The project, editable: the `pipeline` script and devkit then agree that the project root,
# and so the jar cache (/app/.cache/jars), is /app. Only the worker's `spark` jar set is
# fetched (compose runs its own broker); Maven's local repository is dropped afterwards.
COPY --chown=app:app . .
RUN pip install --no-deps -e . \
    && python -m devkit.jars fetch --set spark \
    && rm -rf /app/.cache/m2 /app/.cache/jars/.work


FROM base

COPY --from=build --chown=app:app /opt/venv /opt/venv
COPY --from=build --chown=app:app /app /app
USER app

VOLUME ["/data"]
EXPOSE 4040

# Healthy = the worker answers a ping over Kafka (`worker.pong` within 10 s).
# `|| exit 1`: Docker reads only 0 and 1, and the CLI exits 3 on a time-out.
HEALTHCHECK --interval=30s --timeout=25s --start-period=120s --retries=3 \
    CMD pipeline ping --timeout 10 || exit 1

ENTRYPOINT ["tini", "--"]
CMD ["pipeline", "worker"]
