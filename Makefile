# connector-runtime: make run | make test | make lint | make bench | make dist | make image
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

DIST ?= dist

.PHONY: run test lint fuzz bench clean schemas dist image

$(STAMP): pyproject.toml plugins/auth0/pyproject.toml plugins/webhook/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]' -e ./plugins/auth0 -e ./plugins/webhook
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/connector-runtime run manifests/auth0.yaml

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(DIST) build

# Wheels and sdists of the runtime and both plugins in $(DIST)/ (each wheel is built from
# its sdist, so an sdist that misses a file fails here). Install them with
# `pip install dist/*.whl` (README "Install").
dist: $(STAMP)
	rm -rf $(DIST)
	for p in . plugins/auth0 plugins/webhook; do \
	  $(BIN)/python -m build -q --outdir $(DIST) $$p || exit 1; done
	@ls $(DIST)

# The container image from those wheels (podman; deploy/container/build.sh says how).
image: dist
	PYTHON=$(BIN)/python DIST=$(DIST) deploy/container/build.sh

# Refresh the published copies of the schemas in schemas/ (a test keeps them equal).
schemas: $(STAMP)
	$(BIN)/python -m connector_runtime.cli schema manifest > schemas/manifest.schema.json
	for t in $$($(BIN)/python -c 'from connector_runtime.plugins import build_registry as b; r=b(); print(*sorted([*r.source_types, *r.target_types]))'); do \
	  $(BIN)/python -m connector_runtime.cli schema $$t > schemas/$$t.config.schema.json; done

# Longer fuzzing than the bounded budget make test gives it.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest tests/fuzz -q

# The benchmark (a few minutes; never part of make test).
bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/costs.py
