# certsms — every target sets itself up: a .venv with the project and its dev extra.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check lint types bench demo clean mutation

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/certsms up --sandbox

test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		echo "make test: no Chromium installed, the console's browser tests are skipped (apt-get install chromium)"
	$(BIN)/python -m pytest -q -n 4 --dist load -m "not serial"
	$(BIN)/python -m pytest -q -m serial

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

check: lint types test

bench: $(STAMP)
	$(BIN)/python -m bench

demo: $(STAMP)
	$(BIN)/certsms demo

# Mutation testing of the core (job transitions, guard, answers, validation): not part of
# `make test` (it runs each module's tests once per mutant: tens of minutes). docs/testing.md
mutation: $(STAMP)
	$(BIN)/python -m tools.mutation

# Never touches var/certificates (the default evidence store) or var/redis (job records):
# only the virtualenv, tool caches, run-time scratch files and quick benchmark output.
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var/bench-quick
	find var -maxdepth 1 \( -name '*.pid' -o -name '*.sock' -o -name '*.log' \) -delete 2>/dev/null || true
