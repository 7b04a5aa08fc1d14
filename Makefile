# Two commands: `make run` serves the arena at http://127.0.0.1:$(PORT); `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=
# llama.cpp is compiled once (about 5 minutes on 2 cores) with portable CPU flags and the wheel kept here:
# a -march=native build of llama-cpp-python 0.3.36 segfaults on this machine's AVX-512/AMX CPU.
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF
WHEELHOUSE ?= $(HOME)/.cache/open-arena/wheels/llama-$(LLAMA_VERSION)-avx2

.PHONY: run test setup setup-dev browser lint bench clean

$(VENV)/.base-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
		echo "building llama-cpp-python $(LLAMA_VERSION) (about 5 minutes, once)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel --no-deps --no-cache-dir -w $(WHEELHOUSE) \
			llama-cpp-python==$(LLAMA_VERSION); }
	$(PY) -m pip install --find-links $(WHEELHOUSE) -r requirements.txt
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
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	if [ -n "$$REDIS_URL" ]; then \
		$(PY) -m pytest $(PYTEST_ARGS); \
	else \
		$(PY) -m arena.embedded_redis -- $(PY) -m pytest $(PYTEST_ARGS); \
	fi

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# recompute.py needs PostgreSQL (DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test).
bench: setup-dev
	$(PY) bench/ratings.py
	$(PY) bench/simulate_coverage.py
	$(PY) bench/recompute.py
	$(PY) bench/latency.py
	bash bench/fresh_start.sh

clean:
	rm -rf $(VENV) var staticfiles
