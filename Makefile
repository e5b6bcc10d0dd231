# `make run` and `make test` are all the set-up a fresh machine needs: the first one creates
# .venv and installs the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-unit test-integration test-e2e docs bench drill clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is required (found $$($(PYTHON) --version))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/lifeline up

test: $(STAMP)
	$(BIN)/python -m pytest

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

# The AsyncAPI document is generated from the code, never written by hand.
docs: $(STAMP)
	$(BIN)/faststream docs gen schemas.asyncapi:app --yaml --out schemas/asyncapi.yaml

# Hot paths beside the official SDKs and a direct call, in one run (BENCH_N=1000 calls each).
bench: $(STAMP)
	$(BIN)/python -m bench

# A game day against the running mesh (`make run` in another shell): SCENARIO=provider-outage by
# default; `lifeline drill --help` lists them. The report lands under .lifeline/drills/.
drill: $(STAMP)
	$(BIN)/lifeline drill $(or $(SCENARIO),provider-outage)

clean:
	rm -rf $(VENV) .lifeline .pytest_cache
