# `make demo` and `make test` create .venv, install what is needed, and run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-slow matrix matrix-ci lint format docs bench examples clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -m "not slow"

# Tests marked slow (torch.compile); CI runs them after `make test`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# The version matrix (noxfile.py): every leg, then docs/compatibility.md from
# the results (written even when a leg fails, which then fails the target).
matrix: $(STAMP)
	$(BIN)/nox; status=$$?; $(BIN)/nox -s table; exit $$status

# The legs CI runs besides `make test` (the pinned versions).
matrix-ci: $(STAMP)
	$(BIN)/nox -s floor newest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .nox site build *.egg-info .pytest_cache .ruff_cache
