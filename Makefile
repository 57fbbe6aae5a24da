# Two commands: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast test-durations lint docs docs-serve bench install js-install clean

# The bytecode is written at install time, on every core (pip compiles on one): processes started
# with PYTHONDONTWRITEBYTECODE=1, as CI's are, never write it, and TensorFlow's import compiled from
# source costs twice the CPU.
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null
	touch $(STAMP)

install: $(STAMP)

# The JavaScript package (js/): its npm dependencies from the lockfile. onnxruntime-node's install
# script fetches optional GPU binaries from outside the npm registry; the CPU binaries are in the
# package itself, so the scripts are skipped.
JS_STAMP := js/node_modules/.installed

$(JS_STAMP): js/package.json js/package-lock.json
	cd js && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

js-install: $(JS_STAMP)

demo: $(STAMP)
	$(BIN)/keras-seq demo

# The documentation site (mkdocs.yml): built offline, warnings as errors; the API, CLI and config
# references are generated. docs-serve shows it on http://127.0.0.1:8000.
DOCS_ENV := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true TF_CPP_MIN_LOG_LEVEL=3

docs: $(STAMP)
	$(DOCS_ENV) $(BIN)/python docs/gen_reference.py --sources
	$(DOCS_ENV) $(BIN)/mkdocs build --strict --quiet

docs-serve: $(STAMP)
	$(DOCS_ENV) $(BIN)/python docs/gen_reference.py --sources
	$(DOCS_ENV) $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

# Lint, the docs and the npm install first, side by side (half a minute); then three workers on the two
# cores (the suite waits on its own servers, workers and fresh processes: a third worker fills those
# waits), one test file each at a time (module fixtures train once), the longest files first by their
# measured times (tests/durations.json, written by `make test-durations`), so no worker is left with a
# long tail.
test: $(STAMP)
	$(MAKE) --no-print-directory -j 3 --output-sync=target lint docs js-install
	$(BIN)/python -m pytest -n 3 --dist loadfile --no-loadscope-reorder

test-durations: $(STAMP) $(JS_STAMP)
	KERAS_SEQ_STORE_DURATIONS=1 $(BIN)/python -m pytest -n 3 --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test-fast: $(STAMP) $(JS_STAMP)
	$(BIN)/python -m pytest -n 3 --dist loadfile --no-loadscope-reorder -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_layers

clean:
	rm -rf $(VENV) build *.egg-info js/node_modules
