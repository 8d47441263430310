# Every target creates .venv and installs the project into it when needed, so
# `make run` and `make test` work on a fresh machine with only python3 on it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run chat sim test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ltx-bot run

chat: $(STAMP)
	$(BIN)/ltx-bot chat

sim: $(STAMP)
	$(BIN)/ltx-bot sim

lint: $(STAMP)
	$(BIN)/ruff check bot adapters tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/queue.py
	$(BIN)/python bench/jobs.py
	$(BIN)/python bench/media.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
