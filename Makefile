# Two commands set up a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

# Every setting can be overridden from the environment, e.g. `BIND=127.0.0.1:9000 WORKERS=4 make run`.
export BIND ?= 127.0.0.1:8000
export WORKERS ?= 2
export DATABASE_URL ?= sqlite:///./var/orders.db
export MIGRATIONS_DIR ?= examples/orders/migrations

.PHONY: run test lint typecheck pytest clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(PY) -m pip install --quiet -e ".[examples]"
	touch $@

$(VENV)/.installed-dev: $(BIN)/activate pyproject.toml
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/lastro db upgrade
	$(BIN)/lastro serve examples.orders.app:create_app --factory

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check lastro examples tests benchmarks
	$(BIN)/ruff format --check lastro examples tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy lastro

pytest: $(VENV)/.installed-dev
	$(PY) -m pytest

test: lint typecheck pytest

# The orders benchmark (benchmarks/run.py): about 7 minutes; needs wrk (apt-get install -y wrk), the shared
# baseline beside this repository and PostgreSQL on 127.0.0.1:5432.
.PHONY: bench
bench: $(VENV)/.installed-dev
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m benchmarks.run --json benchmarks/orders.json --chart benchmarks/orders.png

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
