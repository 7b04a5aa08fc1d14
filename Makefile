# Two commands: `make run` serves the arena at http://127.0.0.1:$(PORT); `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test setup setup-dev browser lint bench clean

$(VENV)/.base-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.base-installed requirements-dev.txt
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

setup: $(VENV)/.base-installed
setup-dev: $(VENV)/.dev-installed

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py models defaults
	PORT=$(PORT) $(PY) -m arena.supervisor

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

# Uses DATABASE_URL / REDIS_URL when set (PostgreSQL, Redis); otherwise SQLite and an embedded Redis.
test: setup-dev browser
	if [ -n "$$REDIS_URL" ]; then \
		$(PY) -m pytest $(PYTEST_ARGS); \
	else \
		$(PY) -m arena.embedded_redis -- $(PY) -m pytest $(PYTEST_ARGS); \
	fi

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup-dev
	$(PY) bench/ratings.py
	$(PY) bench/recompute.py
	$(PY) bench/latency.py

clean:
	rm -rf $(VENV) var staticfiles
