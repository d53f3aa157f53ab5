#!/usr/bin/env bash
# Install what the test suite needs, check the apps' import contracts (lint-imports), lint and
# format (ruff) and types (mypy), start PostgreSQL and Redis on loopback if they are not running,
# build or reuse the real test clusters, and run every test. `.ci/run` calls exactly this.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/tenants -k allocation
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

ensure_python_env dev

# The apps' import graph goes one way (pyproject.toml, [tool.importlinter]): a back-import fails here.
echo "== lint-imports"
.venv/bin/lint-imports --no-logo

# One style, checked before anything runs (pyproject.toml, [tool.ruff]).
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

# Types of the product packages ([tool.mypy]: django-stubs and DRF's stubs with their plugins);
# a second run reads .mypy_cache and takes seconds.
echo "== mypy"
.venv/bin/mypy portal tenants provisioning usage identity

ensure_debian_packages
start_postgres
start_redis
trap stop_started_services EXIT

export DATABASE_URL="postgres://canopy@127.0.0.1:${CANOPY_PG_PORT}/canopy"
export REDIS_URL="redis://127.0.0.1:${CANOPY_REDIS_PORT}/0"
export DJANGO_SETTINGS_MODULE=portal.settings.test

for step in tests/clusters/kubernetes/build.sh tests/clusters/kueue/build.sh tests/clusters/hadoop/fetch.sh; do
  if [ -f "$step" ]; then
    echo "== $step"
    bash "$step"
  fi
done

echo "== pytest"
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
exit $status
