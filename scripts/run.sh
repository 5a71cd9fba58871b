#!/usr/bin/env bash
# Starts the action server and the Rasa server (make run). Ctrl-C stops both.
# ENDPOINTS=endpoints.prod.yml switches to the production stores (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p logs
RASA_PORT=${RASA_PORT:-5005}
ACTIONS_PORT=${ACTIONS_PORT:-5055}
ENDPOINTS=${ENDPOINTS:-endpoints.yml}
CREDENTIALS=${CREDENTIALS:-credentials.yml}
export TWILIO_VALIDATE_SIGNATURE=${TWILIO_VALIDATE_SIGNATURE:-false}

.venv/bin/rasa run actions --actions actions --port "$ACTIONS_PORT" >logs/actions.log 2>&1 &
actions_pid=$!
trap 'kill $actions_pid 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 60); do
  curl -fs "http://localhost:$ACTIONS_PORT/health" >/dev/null 2>&1 && break
  kill -0 $actions_pid 2>/dev/null || { echo "Action server failed to start; see logs/actions.log" >&2; tail -20 logs/actions.log >&2; exit 1; }
  sleep 1
done

cat <<MSG

BAKAME is starting (action server on :$ACTIONS_PORT, Rasa on :$RASA_PORT; logs in logs/).
Talk to it once Rasa says "Rasa server is up and running":
  make sim                                   # chat as a learner in this terminal (another window)
  curl -s localhost:$RASA_PORT/webhooks/rest/webhook -d '{"sender":"learner1","message":"muraho"}'
Stop with Ctrl-C.

MSG
.venv/bin/rasa run --model models/bakame.tar.gz --enable-api --port "$RASA_PORT" \
  --credentials "$CREDENTIALS" --endpoints "$ENDPOINTS"
