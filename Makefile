VENV ?= .venv
PY := $(VENV)/bin/python
# A second venv with every runtime dependency at the floor pyproject.toml declares.
LOWEST ?= .venv-lowest
# What runs at the floors: the commands end to end against the emulator, the emulator, the
# job (tests/image needs podman and tests/perf are benchmarks: neither checks an API).
LOWEST_TESTS ?= tests/govctl tests/emulator tests/services tests/ingestion tests/test_end_to_end.py

.PHONY: install demo test lint test-lowest test-live

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

# Rebuilt when the declared dependencies change; the constraints file is written last, so an
# install that failed is retried.
$(LOWEST)/constraints.txt: pyproject.toml scripts/lowest_constraints.py | $(PY)
	rm -rf $(LOWEST)
	python3 -m venv $(LOWEST)
	$(PY) scripts/lowest_constraints.py > $(LOWEST)/floors.txt
	$(LOWEST)/bin/python -m pip install -q -c $(LOWEST)/floors.txt -e '.[all,test]'
	$(LOWEST)/bin/python -m pip check
	mv $(LOWEST)/floors.txt $@

test-lowest: install $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider \
	  -W "ignore:You are using a Python version:FutureWarning" $(LOWEST_TESTS)

test: install lint
	$(VENV)/bin/pytest -q
	$(MAKE) test-lowest

# The live acceptance suite against a real project (docs/live-tests.md): Application Default
# Credentials, names with a random suffix, everything destroyed at the end.
REGION ?= us-central1
test-live: install
	@test -n "$(PROJECT)" || { echo "usage: make test-live PROJECT=PROJECT_ID [REGION=us-central1]" >&2; exit 2; }
	GOVCTL_LIVE_PROJECT=$(PROJECT) GOVCTL_LIVE_REGION=$(REGION) $(VENV)/bin/pytest -q -rs tests/live -k "not emulator"
