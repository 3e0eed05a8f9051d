# One entry point for every check. `make test` works on a fresh machine with Python 3.10+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser services test lint typecheck pytest bench-quick docs demo emulator bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all]" --group dev
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

# Chromium + chromedriver for the e2e browser test: apt-get installs them when missing (as root).
browser:
	sh scripts/install-browser.sh

# PostgreSQL and Redis for the event-store tests, which start their own servers from them.
services:
	sh scripts/install-services.sh

pytest: install browser services
	$(BIN)/pytest

# The benchmark suite runs in quick mode to prove it works; it is never a pass/fail timing test.
bench-quick: install
	$(BIN)/python -m benchmarks.run --quick

# The documentation site, built strictly (any warning fails) into site/, which git ignores.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

test: lint typecheck pytest bench-quick docs

bench: install
	$(BIN)/python -m benchmarks.run

demo: install
	$(BIN)/lattice-stripe demo

emulator: install
	$(BIN)/lattice-stripe emulator --port 12111

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
