#!/usr/bin/env bash
# Save screenshots of the console (demo data, Debian's Chromium) to docs/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_python_env dev
[ -x /usr/bin/chromium ] || apt_install chromium
exec .venv/bin/python -m tests.browser.screenshots "${1:-docs/screenshots}"
