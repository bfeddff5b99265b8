# kadaster: `make run` starts the service (embedded NATS + SQLite), `make test` runs the tests.
# Both create the virtual environment in .venv on first use (Python 3.11 is all that is needed).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-tools test-fast lint fmt typecheck bench bench-quick reliability mutation lock clean contract

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/kadaster serve

# The browser tests drive the distribution's Chromium and the compose file is validated by Debian's
# docker-compose (v1): installed here when missing and the machine has apt-get and root.
TEST_TOOLS := chromium docker-compose

test-tools:
	@missing=""; for tool in $(TEST_TOOLS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "Installing the distribution's$$missing for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "Missing$$missing: install it with your package manager (the browser tests need chromium)"; fi; \
	fi

test: $(STAMP) test-tools
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not postgres and not slow"

lint: $(STAMP)
	$(BIN)/ruff check domain services projections adapters tests bench
	$(BIN)/ruff format --check domain services projections adapters tests bench
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format domain services projections adapters tests bench
	$(BIN)/ruff check --fix domain services projections adapters tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

reliability: $(STAMP)
	$(BIN)/python -m tests.reliability.campaign

# Mutation testing of the domain and the command parsing (configured in pyproject.toml), one worker;
# run it before changing a rule. The shared figures sit beside the repository, not in mutants/.
KADASTER_SHARED_DIR ?= $(abspath $(CURDIR)/../shared)
mutation: $(STAMP)
	rm -rf mutants
	KADASTER_SHARED_DIR=$(KADASTER_SHARED_DIR) $(BIN)/mutmut run --max-children 1
	$(BIN)/python -m tests.mutation.report

contract: $(STAMP)
	$(BIN)/kadaster contract write

lock: $(STAMP)
	{ echo "# Exact versions of every dependency (runtime and dev), installed with: pip install -c requirements.lock -e '.[dev]'"; \
	  echo "# Regenerate with: make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^kadaster'; } > requirements.lock

clean:
	rm -rf $(VENV) .kadaster .pytest_cache .mypy_cache .ruff_cache mutants
