VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test lint

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: $(PY)
	$(PY) -m pip install -q -e '.[dev]'

demo: install
	$(PY) -m govctl.demo

lint: install
	$(VENV)/bin/ruff check govctl ingestion tests
	$(VENV)/bin/ruff format --check govctl ingestion tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(VENV)/bin/hadolint --failure-threshold error ingestion/Dockerfile

test: install lint
	$(VENV)/bin/pytest -q
