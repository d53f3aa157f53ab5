#!/usr/bin/env bash
# Save screenshots of the console (demo data, Debian's Chromium) to docs/screenshots/ (or the folder
# given first; names after it save only those).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_python_env dev
[ -x /usr/bin/chromium ] || apt_install chromium
# Extra arguments name the screenshots to save again (e.g. kubeconfig-help.png); none: all of them.
if [ $# -eq 0 ]; then set -- docs/screenshots; fi
exec .venv/bin/python -m tests.browser.screenshots "$@"
