#!/usr/bin/env bash
# Starts the action server and the Rasa server. Ctrl-C stops both.
#   scripts/run.sh        `make run`: embedded stores, Twilio signatures off unless set, open API
#   scripts/run.sh prod   `make run-prod`: endpoints.prod.yml / credentials.prod.yml; refuses to
#                         start without TWILIO_AUTH_TOKEN, SENDER_ID_SECRET, RASA_AUTH_TOKEN (from
#                         the environment or .env); API behind the token; action server on loopback
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p logs
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
RASA_PORT=${RASA_PORT:-5005}
ACTIONS_PORT=${ACTIONS_PORT:-5055}
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::DeprecationWarning,ignore::PendingDeprecationWarning}

mode=${1:-dev}
# Naming a production file is a production start too: it never gets the development relaxations.
case "${ENDPOINTS:-}${CREDENTIALS:-}" in *prod*) mode=prod ;; esac

if [ "$mode" = prod ]; then
  # .env (as docker compose reads it) for what the environment does not set already.
  source scripts/load_env_file.sh
  .venv/bin/python -m infra.settings check >/dev/null || exit 1
  scripts/train_if_needed.sh
  eval "$(.venv/bin/python -m infra.settings export --reveal)"
  .venv/bin/python -m infra.settings prepare
  ENDPOINTS=endpoints.prod.yml
  CREDENTIALS=credentials.prod.yml
  # The token is read from the environment by Rasa's own --auth-token option.
  api_args=(--enable-api --auth-token "$RASA_AUTH_TOKEN")
  export ACTION_ENDPOINT_URL=${ACTION_ENDPOINT_URL:-http://127.0.0.1:$ACTIONS_PORT/webhook}
else
  ENDPOINTS=${ENDPOINTS:-endpoints.yml}
  CREDENTIALS=${CREDENTIALS:-credentials.yml}
  if [ "$ACTIONS_PORT" != 5055 ] && [ "$ENDPOINTS" = endpoints.yml ]; then
    # endpoints.yml names port 5055 (Rasa 3.6 has no variable defaults): a copy for this port.
    sed "s#localhost:5055#localhost:$ACTIONS_PORT#" endpoints.yml > "logs/endpoints.$ACTIONS_PORT.yml"
    ENDPOINTS=logs/endpoints.$ACTIONS_PORT.yml
  fi
  # Local trials without Twilio: unsigned requests accepted (never on a public URL).
  export TWILIO_VALIDATE_SIGNATURE=${TWILIO_VALIDATE_SIGNATURE:-false}
  api_args=(--enable-api)
fi

# The action server answers only this machine (rasa_sdk binds to SANIC_HOST): nobody else can
# post a forged tracker to it and read a learner's progress.
SANIC_HOST=127.0.0.1 .venv/bin/rasa run actions --actions actions --port "$ACTIONS_PORT" >logs/actions.log 2>&1 &
actions_pid=$!
trap 'kill $actions_pid 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 60); do
  curl -fs "http://127.0.0.1:$ACTIONS_PORT/health" >/dev/null 2>&1 && break
  kill -0 $actions_pid 2>/dev/null || { echo "Action server failed to start; see logs/actions.log" >&2; tail -20 logs/actions.log >&2; exit 1; }
  sleep 1
done

if [ "$mode" = prod ]; then
  cat <<MSG

BAKAME (production) is starting: Rasa on :$RASA_PORT (webhooks: /webhooks/twilio_voice|twilio_sms|rest/webhook),
action server on 127.0.0.1:$ACTIONS_PORT only; logs in logs/. The HTTP API and the REST channel need
RASA_AUTH_TOKEN (?token=... or "Authorization: Bearer ..."). Stop with Ctrl-C.

MSG
else
  cat <<MSG

BAKAME is starting (action server on :$ACTIONS_PORT, Rasa on :$RASA_PORT; logs in logs/).
Talk to it once Rasa says "Rasa server is up and running":
  make sim                                   # chat as a learner in this terminal (another window)
  curl -s localhost:$RASA_PORT/webhooks/rest/webhook -d '{"sender":"learner1","message":"muraho"}'
Stop with Ctrl-C.

MSG
fi
# Rasa through the project's launcher: its patches installed, third-party warnings quiet.
.venv/bin/python -m infra.rasa_main run --model models/bakame.tar.gz "${api_args[@]}" --port "$RASA_PORT" \
  --credentials "$CREDENTIALS" --endpoints "$ENDPOINTS"
