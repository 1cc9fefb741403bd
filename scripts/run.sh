#!/usr/bin/env bash
# Set up and run everything: venv, knowledge import, training if needed, action server, Rasa server
# (REST, socket.io, HTTP API; WeChat when WECHAT_TOKEN is set) and the desk/editor web app.
# Stays in the foreground; Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
model="$(bash scripts/prepare.sh | tail -n 1)"

if [ -z "${RASA_TOKEN:-}" ]; then
  RASA_TOKEN="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))')"
  echo "==> RASA_TOKEN was not set; generated one for this run: $RASA_TOKEN"
fi
export RASA_TOKEN
RASA_PORT="${RASA_PORT:-5005}"; ACTIONS_PORT="${ACTIONS_PORT:-5055}"; DESK_PORT="${DESK_PORT:-8080}"
export ACTION_ENDPOINT_URL="http://127.0.0.1:$ACTIONS_PORT/webhook"
export RASA_URL="${RASA_URL:-http://127.0.0.1:$RASA_PORT}"   # the desk, editor and web chat talk to Rasa here
.venv/bin/python -m bot.runtime_config --out var >/dev/null

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "==> stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

.venv/bin/rasa run actions --actions actions --port "$ACTIONS_PORT" &
pids+=($!)
.venv/bin/rasa run --model "$model" --enable-api --auth-token "$RASA_TOKEN" --cors "*" --port "$RASA_PORT" \
  --credentials var/credentials.yml --endpoints var/endpoints.yml &
pids+=($!)
if [ -f bot/services/app.py ]; then
  .venv/bin/python -m bot.services.app --port "$DESK_PORT" &
  pids+=($!)
fi

echo "==> waiting for the Rasa server (loading a Chinese model takes about a minute)"
for _ in $(seq 1 180); do
  if curl -fs "http://127.0.0.1:$RASA_PORT/status?token=$RASA_TOKEN" >/dev/null 2>&1; then break; fi
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "a service exited; see the log above"; exit 1; }; done
  sleep 1
done
cat <<MSG
==> 星河客服 is up
    Rasa REST webhook   http://127.0.0.1:$RASA_PORT/webhooks/rest/webhook
    socket.io           http://127.0.0.1:$RASA_PORT/socket.io
    HTTP API            http://127.0.0.1:$RASA_PORT/model/parse?token=...  (token: RASA_TOKEN)
    Action server       http://127.0.0.1:$ACTIONS_PORT/webhook
MSG
[ -n "${WECHAT_TOKEN:-}" ] && echo "    WeChat webhook      http://127.0.0.1:$RASA_PORT/webhooks/wechat/webhook"
[ -f bot/services/app.py ] && echo "    Web chat, agent desk, editor  http://127.0.0.1:$DESK_PORT/"
echo "    Ctrl-C stops everything."
wait -n "${pids[@]}"
