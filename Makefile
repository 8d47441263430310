# Every target creates .venv and installs what it needs into it, so `make run` and
# `make test` work on a fresh machine with only python3 on it. `run` installs the
# runtime only; `test` adds the test tools, `bench` the benchmark references.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= ../shared

.PHONY: run chat sim test lint typecheck pytest bench check-specs clean

$(VENV)/.created:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	touch $@

$(VENV)/.runtime: pyproject.toml | $(VENV)/.created
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.runtime
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.bench: pyproject.toml $(VENV)/.runtime
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@

run: $(VENV)/.runtime
	$(BIN)/ltx-bot run

chat: $(VENV)/.runtime
	$(BIN)/ltx-bot chat

sim: $(VENV)/.runtime
	$(BIN)/ltx-bot sim

lint: $(VENV)/.test
	$(BIN)/ruff check bot adapters tests bench

typecheck: $(VENV)/.test
	$(BIN)/mypy

# Two workers (pytest-xdist), one per core: each has its own PostgreSQL server and
# temporary folders, and every server a test starts listens on a free port.
pytest: $(VENV)/.test
	$(BIN)/pytest -q -n 2

test: lint typecheck pytest

# The facts the tests use (tests/specs/facts.json) against fal's docs in ../shared.
check-specs: $(VENV)/.runtime
	$(BIN)/python -m tests.specs.extract --check $(SHARED)

bench: $(VENV)/.bench
	$(BIN)/python bench/queue.py
	$(BIN)/python bench/jobs.py
	$(BIN)/python bench/media.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
