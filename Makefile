# The two commands of the README: `make run` and `make test`. Both make their own venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= $(CURDIR)/var/demo

.PHONY: run test lint install-serve install-dev chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Serving install: no torch.
$(VENV)/.serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Everything: training (torch from this machine's disk, pinned) and the test tools.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $@ $(VENV)/.serve

install-serve: $(VENV)/.serve
install-dev: $(VENV)/.dev

# Start the service with the bundled model, load the demo trial, keep serving.
run: $(VENV)/.serve
	WOUNDSCOPE_DATA_DIR=$(DATA_DIR) $(BIN)/woundscope demo --serve --host $(HOST) --port $(PORT)

# Debian's Chromium for the browser tests (never `playwright install`).
chromium:
	@command -v /usr/bin/chromium >/dev/null || \
	  (apt-get install -y -q chromium >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) || \
	  echo "could not install chromium: browser tests will skip (and fail in CI)"

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy service

# The whole suite: lint, types, tests (PostgreSQL on 127.0.0.1:5432, Chromium).
test: $(VENV)/.dev chromium lint
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var runs
