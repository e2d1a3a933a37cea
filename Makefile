# Two commands set up a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

# Every setting can be overridden from the environment, e.g. `BIND=127.0.0.1:9000 WORKERS=4 make run`.
# `make run` is for a developer's machine; a deploy that sets nothing runs in production.
export ENVIRONMENT ?= development
export BIND ?= 127.0.0.1:8000
export WORKERS ?= 2
export DATABASE_URL ?= sqlite:///./var/orders.db
export MIGRATIONS_DIR ?= examples/orders/migrations

.PHONY: run test lint typecheck pytest faults fuzz mutation lock clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(PY) -m pip install --quiet -e ".[examples]"
	touch $@

# A PostgreSQL DATABASE_URL (postgres://, postgresql://, postgresql+psycopg://) needs the postgres extra too.
RUN_INSTALLED := $(VENV)/.installed $(if $(filter postgres%,$(DATABASE_URL)),$(VENV)/.installed-postgres)

$(VENV)/.installed-postgres: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[examples,postgres]"
	touch $@

$(VENV)/.installed-dev: $(BIN)/activate pyproject.toml
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed $(VENV)/.installed-postgres

run: $(RUN_INSTALLED)
	$(BIN)/lastro db upgrade
	$(BIN)/lastro serve examples.orders.app:create_app --factory

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check lastro examples tests benchmarks scripts
	$(BIN)/ruff format --check lastro examples tests benchmarks scripts

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy lastro examples

# The smoke runs of the benchmark scripts (each starts its systems and measures a tiny round): `make
# bench-smoke`, about two minutes; `make test` leaves them out to stay within its time. Run it after a change
# to benchmarks/ or to what they start.
BENCH_SMOKE_TESTS := tests/benchmarks/test_run_smoke.py tests/benchmarks/test_ab_smoke.py \
	tests/benchmarks/test_backups_smoke.py \
	tests/benchmarks/test_broadcast_smoke.py tests/benchmarks/test_cold_start_smoke.py \
	tests/benchmarks/test_durability_smoke.py tests/benchmarks/test_ratelimit_smoke.py \
	tests/benchmarks/test_stack_smoke.py

# The cluster suite's two longest tests, the faults (kills and partitions under writes) and the rolling
# restart of node after node, each on a cluster of its own: `make cluster-test` runs them with the rest.
CLUSTER_LONG_TESTS := tests/cluster/test_faults.py tests/cluster/test_rolling.py

pytest: $(VENV)/.installed-dev
	$(PY) -m pytest $(addprefix --ignore=,$(BENCH_SMOKE_TESTS) $(CLUSTER_LONG_TESTS))

.PHONY: bench-smoke
bench-smoke: $(VENV)/.installed-dev
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m pytest $(BENCH_SMOKE_TESTS)

test: lint typecheck pytest

# Every fault test, with the long variants (a 60 s WAL load, larger write bursts) that make test shortens
# and the tests it leaves to this target (tests/support/faults.py):
# about 6 minutes.
FAULT_TESTS := tests/examples/test_postgres_faults.py tests/db/test_commit_outcome.py \
	tests/examples/test_disk_full.py tests/db/test_storage_full.py tests/examples/test_wal_bounded.py \
	tests/serve/test_orphans.py tests/serve/test_blocked_loop.py tests/serve/test_slow_clients.py \
	tests/serve/test_drain.py tests/examples/test_login_flood.py tests/examples/test_order_audit.py \
	tests/examples/test_orders_load.py tests/examples/test_jobs.py tests/examples/test_backups.py \
	tests/examples/test_metrics.py
faults: $(VENV)/.installed-dev
	LASTRO_FAULTS=1 $(PY) -m pytest $(FAULT_TESTS)

# Schemathesis against the orders service (tests/examples/test_fuzz.py) with 500 cases per operation and a
# new seed each run, instead of the 50 and fixed seed of `make test`: about 25 minutes on two cores.
FUZZ_EXAMPLES ?= 500
fuzz: $(VENV)/.installed-dev
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=random $(PY) -m pytest tests/examples/test_fuzz.py

# Mutation testing (not part of `make test`): mutmut on lastro/db, lastro/http, settings.py and health.py,
# each module against its own tests, scores in mutants/summary.json (docs/mutation.md). About 30 minutes on
# two cores; MODULES="lastro/db/retry.py lastro/settings.py" measures a few.
MUTATION_CHILDREN ?= 2
mutation: $(VENV)/.installed-dev
	$(PY) -m pip install --quiet -e ".[dev,mutation]"
	$(PY) scripts/mutation.py --max-children $(MUTATION_CHILDREN) --fail-under 85 $(MODULES)

# The cluster suite (tests/cluster, docs/scale-out.md): three `lastro serve` nodes in network namespaces of
# the test's own, behind nginx, on one PostgreSQL and one Redis. Needs root, iproute2, nftables and socat
# (.ci/run installs them); `make test` runs it too when run as root, and skips it, saying why, otherwise.
# cluster-soak holds each fault of the fault test for 10 s instead of 5, and restarts all three nodes in the
# rolling test instead of two.
.PHONY: cluster-test cluster-soak
cluster-test: $(VENV)/.installed-dev
	$(PY) -m pytest tests/cluster

cluster-soak: $(VENV)/.installed-dev
	LASTRO_CLUSTER_SOAK=1 $(PY) -m pytest tests/cluster

# The orders benchmark (benchmarks/run.py): about 7 minutes; needs wrk (apt-get install -y wrk), the shared
# baseline beside this repository and PostgreSQL on 127.0.0.1:5432.
.PHONY: bench
bench: $(VENV)/.installed-dev
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m benchmarks.run --json benchmarks/orders.json --chart benchmarks/orders.png

# The deploy lock: exact versions and sha256 hashes of the runtime dependencies and of the examples,
# postgres and redis extras, for Python $(LOCK_PYTHON) on any platform. The Dockerfile that `lastro deploy
# docker` writes installs it with --require-hashes (docs/deploy/docker.md). Needs PyPI; pins already in the
# lock are kept unless the project's requirements exclude them: `make lock LOCK_FLAGS=--upgrade` moves
# every pin to the newest allowed version.
LOCK_PYTHON ?= 3.11
LOCK_FLAGS ?=
lock: $(VENV)/.installed-dev
	$(BIN)/uv pip compile pyproject.toml --extra examples --extra postgres --extra redis --universal \
		--python-version $(LOCK_PYTHON) --generate-hashes --quiet $(LOCK_FLAGS) -o requirements/deploy.lock

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
