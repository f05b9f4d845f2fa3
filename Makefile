# Concord: `make run` sets up and runs the platform; `make test` sets up and runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PG_TEST_URL := $(CONCORD_TEST_DATABASE_URL)

.PHONY: run test test-sqlite test-postgresql install install-test browser lint bench clean help

help:
	@echo "make run    set up .venv, create the database with the demo network, serve on http://$(HOST):$(PORT)/"
	@echo "make test   set up .venv with the test tools and run the suite on SQLite, then PostgreSQL"
	@echo "make lint   ruff"
	@echo "make bench  run the benchmarks under bench/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Browser tests drive Debian's chromium (never a downloaded browser).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian's chromium for the browser tests..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "chromium is missing and cannot be installed here: browser tests will be skipped"; \
	fi

run: install
	@mkdir -p -m 700 var  # the database and the demo logins: their owner's only
	$(BIN)/concord init --demo
	@echo
	@echo "Open http://$(HOST):$(PORT)/ and sign in with a login above (all demo logins: var/demo-logins.txt)."
	$(BIN)/concord serve --host $(HOST) --port $(PORT)

# With a PostgreSQL URL the two runs go side by side (each has a database of its own): much of
# a run waits on its database, a browser or a child process, so two share the cores well. The
# PostgreSQL run's output follows the SQLite run's.
test: install-test browser
	@if [ -n "$(PG_TEST_URL)" ]; then \
		log=$$(mktemp); \
		( $(MAKE) --no-print-directory test-postgresql > $$log 2>&1; echo $$? >> $$log.rc ) & \
		$(MAKE) --no-print-directory test-sqlite; sqlite=$$?; \
		wait; cat $$log; pg=$$(cat $$log.rc); rm -f $$log $$log.rc; \
		[ $$sqlite -eq 0 ] && [ $$pg -eq 0 ]; \
	else \
		$(MAKE) --no-print-directory test-sqlite && \
		echo "PostgreSQL run SKIPPED: set CONCORD_TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) to run the suite on PostgreSQL"; \
	fi

test-sqlite: install-test
	@echo "=== test suite on SQLite ==="
	CONCORD_TEST_BACKEND=sqlite $(BIN)/python -m pytest -q

test-postgresql: install-test
	@echo "=== test suite on PostgreSQL ==="
	CONCORD_TEST_BACKEND=postgresql $(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: install
	$(BIN)/python bench/whois.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/correlate.py
	$(BIN)/python bench/reads.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
