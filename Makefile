# `make test` builds its own virtual environment from nothing and runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest chromium clean demo stop chaos bench up down

test: lint typecheck pytest

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) chromium
	$(BIN)/pytest

# Debian's Chromium for tests/test_web_ui.py, installed where missing (instant when it is
# there). Where it cannot be installed, the reason is printed, and the test is skipped
# with it: the rest of the suite runs all the same.
chromium:
	-scripts/install-chromium.sh

# Not part of `make test`: about 20 minutes of worker kills, Temporal restarts, faults,
# overlapping batches and bad inputs, all real processes on 127.0.0.1 (scripts/chaos.py);
# writes docs/reliability.md and fails naming every check that did not hold.
chaos: $(STAMP)
	ENFORCER_ENV_FILE= $(BIN)/python scripts/chaos.py

# Not part of `make test`: about 40 minutes on 2 cores (a 1,000,000-item run included). The engine (Temporal dev server,
# worker, sandbox, all real processes on 127.0.0.1) against a bare asyncio loop and
# spotipy on the reference library; writes docs/performance.md and bench/results.json
# (bench/run.py; `--quick` for a trial of a couple of minutes).
bench: $(STAMP)
	ENFORCER_ENV_FILE= $(BIN)/python bench/run.py

# Temporal (Web UI on http://127.0.0.1:8233), the sandbox and the worker in the
# background (pid files and logs in .data/demo/), then the demo: plan and enforce.
demo: $(STAMP)
	scripts/demo.sh start

# Stops what `make demo` started (by its pid files), and nothing else.
stop:
	scripts/demo.sh stop

# For real use with your Spotify account: Temporal (Web UI on http://127.0.0.1:8233) and
# the worker in the background, no sandbox; state, pid files and logs in .data/. The
# worker's settings come from the environment and .env (README, "Real use").
# STATE_DIR, TEMPORAL_PORT and TEMPORAL_UI_PORT change where they go.
up: $(STAMP)
	scripts/up.sh up

# Stops what `make up` started (by its pid files), and nothing else.
down:
	scripts/up.sh down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
