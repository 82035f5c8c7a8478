VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test lint test-live

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

# The live acceptance suite against a real project (docs/live-tests.md): Application Default
# Credentials, names with a random suffix, everything destroyed at the end.
REGION ?= us-central1
test-live: install
	@test -n "$(PROJECT)" || { echo "usage: make test-live PROJECT=PROJECT_ID [REGION=us-central1]" >&2; exit 2; }
	GOVCTL_LIVE_PROJECT=$(PROJECT) GOVCTL_LIVE_REGION=$(REGION) $(VENV)/bin/pytest -q -rs tests/live -k "not emulator"
