# `make demo` and `make test` create .venv, install what is needed, and run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
# The package and its dependencies (what the demo needs), and on top of them
# every development tool. The development install also stamps the core one,
# which it includes: `make test` then `make demo` installs nothing more.
CORE_STAMP := $(VENV)/.core-stamp
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-slow matrix matrix-ci lint format docs bench examples wheel-check clean

$(CORE_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	touch $(CORE_STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e ".[dev]"
	touch $(STAMP) $(CORE_STAMP)

install: $(STAMP)

demo: $(CORE_STAMP)
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
	$(PIP) -e ".[bench]"
	$(BIN)/python benchmarks/run.py

# The package as a user gets it: build the sdist and, from it, the wheel;
# install the wheel into a fresh virtual environment (torch from
# constraints.txt, pip's cache reused) and run the quick start from a
# folder outside the tree, in isolated mode (no source tree on the path).
# A stale *.egg-info would add the files it lists to the sdist.
wheel-check: $(STAMP)
	rm -rf *.egg-info
	WHEEL_DIR=$$(mktemp -d) && trap 'rm -rf "$$WHEEL_DIR"' EXIT && \
	$(BIN)/python -m build --outdir "$$WHEEL_DIR/dist" . > "$$WHEEL_DIR/build.log" 2>&1 || \
		{ cat "$$WHEEL_DIR/build.log"; exit 1; } && \
	$(PYTHON) -m venv "$$WHEEL_DIR/venv" && \
	"$$WHEEL_DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt "$$WHEEL_DIR"/dist/skcallback-*.whl && \
	cp examples/quickstart.py "$$WHEEL_DIR/" && cd "$$WHEEL_DIR" && \
	venv/bin/python -I -c "import skcallback; assert 'site-packages' in skcallback.__file__" && \
	venv/bin/python -I quickstart.py

clean:
	rm -rf $(VENV) .nox site build *.egg-info .pytest_cache .ruff_cache
