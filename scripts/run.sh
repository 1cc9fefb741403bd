#!/usr/bin/env bash
# Set up and run everything: venv, knowledge import, training if needed, action server, Rasa server
# (REST, socket.io, HTTP API; WeChat when WECHAT_TOKEN is set) and the desk/editor web app.
# Stays in the foreground; Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
model="$(bash scripts/prepare.sh | tail -n 1)"

VAR="${XINGHE_VAR_DIR:-$PWD/var}"; export XINGHE_VAR_DIR="$VAR"
mkdir -p "$VAR"
secret() { .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))'; }
# Secrets come from the environment; the ones a single machine can make up are generated per run. They are
# passed to the servers through the environment only, never on a command line (ps shows those).
if [ -z "${RASA_TOKEN:-}" ]; then
  RASA_TOKEN="$(secret)"
  (umask 077; printf '%s\n' "$RASA_TOKEN" > "$VAR/rasa-token")
  echo "==> RASA_TOKEN was not set; generated one for this run in $VAR/rasa-token (mode 600)"
fi
export RASA_TOKEN
export XINGHE_ACTION_TOKEN="${XINGHE_ACTION_TOKEN:-$(secret)}"   # Rasa -> action server
export XINGHE_WEBCHAT_KEY="${XINGHE_WEBCHAT_KEY:-$(secret)}"     # signs web chat session ids
RASA_PORT="${RASA_PORT:-5005}"; ACTIONS_PORT="${ACTIONS_PORT:-5055}"; DESK_PORT="${DESK_PORT:-8080}"
# Every service listens on loopback unless these say otherwise (nginx in front for the public web).
export RASA_HOST="${RASA_HOST:-127.0.0.1}" ACTIONS_HOST="${ACTIONS_HOST:-127.0.0.1}" DESK_HOST="${DESK_HOST:-127.0.0.1}"
export ACTION_ENDPOINT_URL="http://127.0.0.1:$ACTIONS_PORT/webhook"
export RASA_URL="${RASA_URL:-http://127.0.0.1:$RASA_PORT}"   # the desk, editor and web chat talk to Rasa here
export RABBITMQ_PASSWORD="${RABBITMQ_PASSWORD:-guest}"   # the event broker's; RabbitMQ's default account here
.venv/bin/python -m bot.runtime_config --out "$VAR" >/dev/null
# First run on an empty database: a supervisor account; its one-time password is shown last, with the addresses.
first_run="$(.venv/bin/python -m bot.services.users ensure-first-admin --login-url "http://$DESK_HOST:$DESK_PORT/desk/login")" \
  || first_run="==> could not check for a first account (see the error above)"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "==> stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

.venv/bin/python -m bot.services.action_server --actions actions --port "$ACTIONS_PORT" &
pids+=($!)
.venv/bin/python -m bot.services.rasa_server --model "$model" --port "$RASA_PORT" \
  --credentials "$VAR/credentials.yml" --endpoints "$VAR/endpoints.yml" &
pids+=($!)
if [ "${EVENT_BROKER:-pika}" != none ]; then
  # conversation events from RabbitMQ into the statistics tables (bot.analytics); its own process, so the
  # statistics never slow a reply
  .venv/bin/python -m bot.analytics.consumer &
  pids+=($!)
fi
if [ -f bot/services/app.py ]; then
  .venv-web/bin/python -m bot.services.app --port "$DESK_PORT" &   # its own env: current aiohttp
  pids+=($!)
fi

echo "==> waiting for the Rasa server (loading a Chinese model takes about a minute)"
for _ in $(seq 1 180); do
  if curl -fs "http://127.0.0.1:$RASA_PORT/" >/dev/null 2>&1; then break; fi   # Rasa listens once the model is loaded
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "a service exited; see the log above"; exit 1; }; done
  sleep 1
done
cat <<MSG
==> 星河客服 is up
    Rasa REST webhook   http://$RASA_HOST:$RASA_PORT/webhooks/rest/webhook  (local tools)
    socket.io           http://$RASA_HOST:$RASA_PORT/socket.io  (browsers: through the web chat relay)
    HTTP API            http://$RASA_HOST:$RASA_PORT/model/parse?token=...  (token: RASA_TOKEN)
    Action server       http://$ACTIONS_HOST:$ACTIONS_PORT/webhook  (callers send XINGHE_ACTION_TOKEN)
MSG
[ -n "${WECHAT_TOKEN:-}" ] && echo "    WeChat webhook      http://$RASA_HOST:$RASA_PORT/webhooks/wechat/webhook"
[ "${EVENT_BROKER:-pika}" != none ] && echo "    Event consumer      RabbitMQ ${RABBITMQ_HOST:-127.0.0.1}:${RABBITMQ_PORT:-5672} -> statistics tables"
[ -f bot/services/app.py ] && echo "    Web chat, agent desk, editor  http://$DESK_HOST:$DESK_PORT/"
echo "    Ctrl-C stops everything."
[ -n "$first_run" ] && printf '%s\n' "$first_run"
wait -n "${pids[@]}"
