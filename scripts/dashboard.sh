#!/usr/bin/env bash
# The programme dashboard (docs/dashboard.md).
#   scripts/dashboard.sh serve|user ...          production: .env + the environment, the same
#                                                databases as `make run-prod`; `serve` refuses
#                                                to start without DASHBOARD_SECRET_KEY
#   scripts/dashboard.sh serve|user --local ...  next to `make run` (SQLite progress, no events)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::DeprecationWarning,ignore::PendingDeprecationWarning}
if [[ " $* " != *" --local "* ]]; then
  source scripts/load_env_file.sh
  # DATABASE_URL, REDIS_URL, ... derived as for the assistant (infra/settings.py)
  eval "$(.venv/bin/python -m infra.settings export --reveal)"
fi
exec .venv/bin/python -m dashboard "$@"
