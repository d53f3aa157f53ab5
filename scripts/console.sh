#!/usr/bin/env bash
# Install Canopy and start the console on the embedded default: SQLite, tasks in-process,
# the source documents' demo data, http://127.0.0.1:8000. Needs no external server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

ensure_python_env
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-portal.settings.local}"
.venv/bin/python manage.py migrate --no-input -v 0
.venv/bin/python manage.py load_demo
# Demo data: Bob's open quota request for dev1, waiting for a decision.
.venv/bin/python manage.py demo_quota_requests
# DEMO ONLY: invented usage (30 days of history, then a pass every 15 s) so the charts are not
# empty without a cluster; every page showing it says so. It stops with the console.
.venv/bin/python manage.py demo_usage --backfill-days 30
.venv/bin/python manage.py demo_usage --follow --interval 15 &
demo_pid=$!
# No Celery beat here: this ends time-bound grants when their time comes (beat does it elsewhere).
.venv/bin/python manage.py allocation_grants_end --follow --interval 60 &
grants_pid=$!
trap 'kill $demo_pid $grants_pid 2>/dev/null || true' EXIT
echo
addr="${CANOPY_ADDR:-127.0.0.1:8000}"
echo "Canopy is starting at http://$addr/ (API docs: /api/docs/, admin: /admin/). Ctrl-C stops it."
.venv/bin/python manage.py runserver "$addr"
