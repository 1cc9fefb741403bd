#!/usr/bin/env bash
# Set up and run everything: venv, knowledge import, training if needed, action server, Rasa server
# (REST, socket.io, HTTP API; WeChat when WECHAT_TOKEN is set) and the desk/editor web app, each supervised
# by supervisord (a process that dies is restarted and logged in var/log/; the others keep serving).
# `--cluster` (scripts/run-cluster.sh): several Rasa and action servers behind nginx.
# Stays in the foreground; Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=""; [ "${1:-}" = "--cluster" ] && CLUSTER="--cluster"
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
export RASA_PORT ACTIONS_PORT DESK_PORT
# The desk, editor and web chat talk to Rasa at RASA_URL; in a cluster both URLs are nginx's balancers.
export ACTION_ENDPOINT_URL="$(.venv/bin/python -m bot.deploy.layout --var "$VAR" --model "$model" $CLUSTER --print action-url)"
export RASA_URL="${RASA_URL:-$(.venv/bin/python -m bot.deploy.layout --var "$VAR" --model "$model" $CLUSTER --print rasa-url)}"
export RABBITMQ_PASSWORD="${RABBITMQ_PASSWORD:-guest}"   # the event broker's; RabbitMQ's default account here
.venv/bin/python -m bot.runtime_config --out "$VAR" >/dev/null
# First run on an empty database: a supervisor account; its one-time password is shown last, with the addresses.
first_run="$(.venv/bin/python -m bot.services.users ensure-first-admin --login-url "http://$DESK_HOST:$DESK_PORT/desk/login")" \
  || first_run="==> could not check for a first account (see the error above)"

if ! command -v supervisord >/dev/null 2>&1 || { [ -n "$CLUSTER" ] && ! command -v nginx >/dev/null 2>&1; }; then
  echo "supervisord (and nginx for the cluster) are needed: sudo apt-get install -y supervisor nginx" >&2
  exit 1
fi
conf="$(.venv/bin/python -m bot.deploy.layout --var "$VAR" --model "$model" $CLUSTER)"
supervisord -c "$conf" &   # nodaemon: it stays a child of this script
sup=$!
stop() {
  trap - INT TERM EXIT
  echo; echo "==> stopping"
  kill -TERM "$sup" 2>/dev/null || true   # supervisord stops every program it runs
  wait "$sup" 2>/dev/null || true
}
trap stop INT TERM EXIT

echo "==> waiting for the services (loading a Chinese model takes about a minute per Rasa instance)"
.venv/bin/python -m bot.deploy.health --layout "$VAR/layout.json" --wait 400 || {
  echo "==> not every service answers yet; see $VAR/log/ (supervisord keeps restarting what exits)"; }
if [ -n "$CLUSTER" ]; then
  cat <<MSG
==> 星河客服 cluster is up: ${RASA_INSTANCES:-2} Rasa servers, ${ACTION_INSTANCES:-2} action servers, nginx
    Public (put TLS in front)  http://127.0.0.1:${NGINX_PORT:-8000}/  web chat /chat, desk /desk/, editor /editor/, WeChat /webhooks/wechat/webhook
    Rasa, balanced (local)     $RASA_URL/webhooks/rest/webhook  and the HTTP API
    Actions, balanced (local)  $ACTION_ENDPOINT_URL
MSG
else
  cat <<MSG
==> 星河客服 is up
    Rasa REST webhook   http://$RASA_HOST:$RASA_PORT/webhooks/rest/webhook  (local tools)
    socket.io           http://$RASA_HOST:$RASA_PORT/socket.io  (browsers: through the web chat relay)
    HTTP API            http://$RASA_HOST:$RASA_PORT/model/parse?token=...  (token: RASA_TOKEN)
    Action server       http://$ACTIONS_HOST:$ACTIONS_PORT/webhook  (callers send XINGHE_ACTION_TOKEN)
MSG
  [ -n "${WECHAT_TOKEN:-}" ] && echo "    WeChat webhook      http://$RASA_HOST:$RASA_PORT/webhooks/wechat/webhook"
  [ "${EVENT_BROKER:-pika}" != none ] && echo "    Event consumer      RabbitMQ ${RABBITMQ_HOST:-127.0.0.1}:${RABBITMQ_PORT:-5672} -> statistics tables"
  echo "    Web chat, agent desk, editor  http://$DESK_HOST:$DESK_PORT/"
fi
echo "    Status: .venv/bin/python -m bot.deploy.health --layout $VAR/layout.json   logs: $VAR/log/"
echo "    Ctrl-C stops everything."
[ -n "$first_run" ] && printf '%s\n' "$first_run"
wait "$sup"
