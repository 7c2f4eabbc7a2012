# zjtx — two commands do all set-up on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint typecheck bench faults clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/zjtx run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check shared services tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy shared services/*/domain

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# a seeded chaos run (issue 16): kills, PostgreSQL and broker restarts, duplicates, poison; prints each invariant
faults: $(STAMP)
	$(BIN)/python scripts/faults.py --seeds 1 2 3

clean:
	rm -rf .zjtx
