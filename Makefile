# The two commands of the README: `make run` and `make test`. Both make their own venv.
#   make run PORT=8001     another port (HOST=0.0.0.0 to listen on every interface)
#   make stop              stop what `make run` started (same DATA_DIR)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= $(CURDIR)/var/demo
# `make run` writes its PID here (the PID of `woundscope demo --serve`, which the
# recipe execs), for `make stop`.
RUN_PID := $(DATA_DIR)/make-run.pid
# pip's own lines (Collecting, Downloading, Installing) are the install's progress.
PIP_INSTALL := $(BIN)/python -m pip install --progress-bar on

.PHONY: run stop check-port test lint install-serve install-dev chromium clean

# Without pip: its bootstrap (ensurepip) took 2 of the 3 minutes of a first start on the
# busy shared machine; pip is added where it is used (ENSURE_PIP).
$(BIN)/python:
	@echo "make: creating $(VENV) (first run only)"
	$(PYTHON) -m venv --without-pip $(VENV)

# `python -m pip`, not bin/pip: ensurepip installs only pip3 and pip3.11 (a clean
# checkout's `make test` failed on a missing bin/pip).
ENSURE_PIP := $(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade

# Serving install: no torch. With uv (from PyPI, into the venv) by default: on a
# shared 2-core machine it installs the service in about 20 s where pip took about
# 3 minutes (benchmarks/demo/README.md). INSTALLER=pip uses pip alone (pip's index
# settings, e.g. a private mirror; uv reads UV_INDEX_URL, not pip.conf); pip is also
# the fallback when uv cannot be installed.
INSTALLER ?= uv
$(VENV)/.serve: pyproject.toml | $(BIN)/python
	@echo "make: installing the service into $(VENV) with $(INSTALLER) (first run only; its progress follows)"
	@if [ "$(INSTALLER)" = uv ] && { $(PYTHON) -m pip --python $(BIN)/python install uv \
	     || { $(ENSURE_PIP) && $(PIP_INSTALL) uv; }; }; then \
	  echo "$(BIN)/uv pip install --python $(BIN)/python -e ."; \
	  $(BIN)/uv pip install --python $(BIN)/python -e .; \
	else \
	  $(ENSURE_PIP) && echo "$(PIP_INSTALL) -e ." && $(PIP_INSTALL) -e .; \
	fi
	touch $@

# Everything: training (torch from this machine's disk, pinned) and the test tools.
# pip, not uv: only pip takes torch from this machine's disk (uv would download a
# CUDA build of several GB).
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	@echo "make: installing the service, training and test tools into $(VENV) (pip's progress follows)"
	$(ENSURE_PIP)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -e '.[train,dev]'
	touch $@ $(VENV)/.serve

install-serve: $(VENV)/.serve
install-dev: $(VENV)/.dev

# Is HOST:PORT free? Checked before anything is installed or started, so a busy port
# is said at once (and the demo never talks to another process on that port).
check-port:
	@$(PYTHON) -c 'import socket, sys; s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], int(sys.argv[2])))' '$(HOST)' '$(PORT)' 2>/dev/null || \
	  { echo "error: port $(PORT) on $(HOST) is in use (another process listens there): stop it (make stop, if it is an earlier make run) or pick another port: make run PORT=8001" >&2; exit 1; }

# Start the service with the bundled model, load the demo trial, keep serving. The
# recipe execs the demo, so TERM to make (which make passes on to its child) or
# `make stop` stops the demo and the service it started.
run: check-port $(VENV)/.serve
	@echo "WOUNDSCOPE_DATA_DIR='$(DATA_DIR)' $(BIN)/woundscope demo --serve --host $(HOST) --port $(PORT)"
	@mkdir -p '$(DATA_DIR)' && echo $$$$ > '$(RUN_PID)' && \
	  WOUNDSCOPE_DATA_DIR='$(DATA_DIR)' exec $(BIN)/woundscope demo --serve --host $(HOST) --port $(PORT)

# Stop what `make run` started: TERM to the PID it recorded, if that process is still
# `woundscope demo` (not a reused PID), then wait for it to stop its service.
stop:
	@pid=$$(cat '$(RUN_PID)' 2>/dev/null); \
	if [ -z "$$pid" ] || ! ps -o args= -p "$$pid" 2>/dev/null | grep -q 'woundscope.* demo'; then \
	  echo "make stop: no make run is running (no live PID in $(RUN_PID))"; rm -f '$(RUN_PID)'; exit 0; fi; \
	kill -TERM "$$pid"; \
	for i in $$(seq 60); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.5; done; \
	if kill -0 "$$pid" 2>/dev/null; then echo "make stop: $$pid did not stop in 30 s" >&2; exit 1; fi; \
	rm -f '$(RUN_PID)'; echo "make stop: stopped make run (PID $$pid) and its service"

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
