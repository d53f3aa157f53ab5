#!/usr/bin/env bash
# Run a benchmark by hand against a real PostgreSQL (started on loopback like the tests do), in its
# own database (`canopy_bench`, or CANOPY_BENCH_DB so two benchmarks can run at once), dropped and
# created fresh each run. Results go to docs/performance.md.
#   bash bench/run.sh all            # every benchmark below, one after the other (about 20 minutes)
#   bash bench/run.sh scale          # 10,000 tenants: tree page, tenant page, tenant list API, create
#   bash bench/run.sh reconcile      # also starts the Kubernetes test control plane (tests/clusters)
#   bash bench/run.sh reconcile --engine kueue  # the same on the Kueue test cluster, quota engine Kueue
#   bash bench/run.sh usage_dashboard  # the same 10,000 tenants with 30 days of usage (7 GB of disk)
#   bash bench/run.sh showback   # the same 10,000 tenants with a month of hourly rollups: the showback
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

ensure_python_env dev
ensure_debian_packages
start_postgres
start_redis  # the reconcile benchmark's Celery worker
trap stop_started_services EXIT

name="${1:?which benchmark: all, scale, reconcile, usage_dashboard or showback}"
shift
database="${CANOPY_BENCH_DB:-canopy_bench}"
export DATABASE_URL="postgres://canopy@127.0.0.1:${CANOPY_PG_PORT}/${database}"
export DJANGO_SETTINGS_MODULE=portal.settings.test
export REDIS_URL="redis://127.0.0.1:${CANOPY_REDIS_PORT}/2"  # not the tests' database 0

run_benchmark() {
  local benchmark="$1"
  shift
  echo "== bench.$benchmark"
  "$(pg_bin)/dropdb" --if-exists -h 127.0.0.1 -p "$CANOPY_PG_PORT" -U canopy "$database"
  "$(pg_bin)/createdb" -h 127.0.0.1 -p "$CANOPY_PG_PORT" -U canopy "$database"
  .venv/bin/python manage.py migrate --no-input -v 0
  sync  # the previous benchmark's writes are not written back during this one
  .venv/bin/python -m "bench.$benchmark" "$@"
}

if [ "$name" = all ]; then
  for benchmark in scale reconcile usage_dashboard showback; do
    run_benchmark "$benchmark"
  done
  run_benchmark reconcile --engine kueue
  "$(pg_bin)/dropdb" --if-exists -h 127.0.0.1 -p "$CANOPY_PG_PORT" -U canopy "$database"
else
  run_benchmark "$name" "$@"
fi
