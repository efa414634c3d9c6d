# Two entry points (see README): `make run` and `make test`. Each makes its own virtualenv.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

.PHONY: install run test test-fast lint check screenshot bench
install: $(STAMP)

run: $(STAMP)  ## today's cs.CV announcement → digest in output/ (offline defaults; see README)
	DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/digest run

lint: $(STAMP)
	$(BIN)/ruff check src tests flows bench
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

test: lint  ## ruff, mypy, hadolint and every test (fast unit suite + integration suite), on 2 workers
	DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/pytest -q -n 2 --dist loadfile

test-fast: $(STAMP)  ## the fast unit suite only (in-process fakes, well under a minute)
	DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/pytest -q -m "not integration" tests/unit

check: test

screenshot: $(STAMP)  ## render a replayed day and screenshot its HTML with headless Chromium
	$(BIN)/python bench/screenshot.py

bench: $(STAMP)  ## every benchmark (minutes); figures go to docs/BENCHMARKS.md
	$(BIN)/python bench/parse.py
	$(BIN)/python bench/relevance.py
	$(BIN)/python bench/llm_throughput.py
	$(BIN)/python bench/bilingual.py --fake
	$(BIN)/python bench/e2e.py
