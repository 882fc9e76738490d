# Everything installs from the project's own files: `make run` and `make test` are the
# two set-up commands; both are idempotent.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JARS_STAMP := .cache/jars/.fetched
PYTEST_ARGS ?=

.PHONY: install jars run broker-start broker-stop test unit lint schemas check-schemas \
        bench demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# JVM artifacts (Delta, Spark-Kafka connector, Kafka broker) from Maven Central, once.
jars: $(STAMP)
	$(BIN)/python -m devkit.jars fetch

run: jars
	@$(BIN)/pipeline broker status >/dev/null 2>&1 || $(BIN)/pipeline broker start
	$(BIN)/pipeline worker

broker-start: jars
	$(BIN)/pipeline broker start

broker-stop: $(STAMP)
	$(BIN)/pipeline broker stop

lint: $(STAMP)
	$(BIN)/ruff check .

schemas: $(STAMP)
	$(BIN)/python -m contracts.schema_export --out schemas

check-schemas: $(STAMP)
	$(BIN)/python -m contracts.schema_export --check

test: jars lint
	$(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration and not spark and not e2e" $(PYTEST_ARGS)

bench: jars
	$(BIN)/python -m bench.run

demo: jars
	$(BIN)/python -m producers.demo

clean:
	rm -rf $(VENV) .cache data .pytest_cache
