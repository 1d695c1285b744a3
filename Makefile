# One-command set-up: `make run` and `make test` each create .venv and install the
# project first, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: venv run test test-fast lint format bench bench-startup bench-memory sim screenshot clean

venv: $(STAMP)

# Re-install only when the project's dependency list changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_QUIET) --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m pip install $(PIP_QUIET) -e '.[test,dev]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import ib_async, PySide6, qasync, arcticdb, pyqtgraph, pandas" \
		|| { echo "installation incomplete: see the pip output above"; exit 1; }
	touch $(STAMP)

run: venv
	$(BIN)/python main.py $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: venv lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -x -q -m "not slow" $(PYTEST_ARGS)

bench: venv
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done
	@$(MAKE) --no-print-directory bench-memory

# Start-up on a fresh profile only (make bench runs it too): window shown, usable, loaded.
bench-startup: venv
	$(BIN)/python benchmarks/bench_startup.py $(ARGS)

# Resident memory through long storms: IB-like (5,000 ticks/s: a few updates a second
# for each of 500 symbols) and the 20,000 ticks/s stress rate; MB/min after warm-up.
bench-memory: venv
	@echo "== benchmarks/bench_gui.py --memory (IB-like rate)"
	@$(BIN)/python benchmarks/bench_gui.py --memory --rate 5000 --seconds $(or $(MEMORY_SECONDS),300)
	@echo "== benchmarks/bench_gui.py --memory (stress rate)"
	@$(BIN)/python benchmarks/bench_gui.py --memory --rate 20000 --seconds $(or $(MEMORY_SECONDS),300)

sim: venv
	$(BIN)/python -m core.sim --host 127.0.0.1 --port 4002 $(ARGS)

# A fresh data directory each time, so the picture shows exactly the demonstration book.
screenshot: venv
	rm -rf .screenshot-home && IBCONSOLE_HOME=$(CURDIR)/.screenshot-home QT_QPA_PLATFORM=offscreen \
		$(BIN)/python main.py --config resources/demo-config.toml --demo --screenshot docs/screenshot.png
	rm -rf .screenshot-home

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
