#!/usr/bin/env bash
# The cluster layout on one machine (README, Production): RASA_INSTANCES Rasa servers (default 2) and
# ACTION_INSTANCES action servers (default 2) behind nginx, the web app, all on PostgreSQL (knowledge, tickets,
# audit, users, Rasa's tracker store) and Redis (lock store, socket.io rooms, WeChat retries and token),
# supervised by supervisord. Stays in the foreground; Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KNOWLEDGE_DB_URL="${KNOWLEDGE_DB_URL:-postgresql://postgres@127.0.0.1:5432/xinghe}"
export TRACKER_DB_URL="${TRACKER_DB_URL:-$KNOWLEDGE_DB_URL}"
export TRACKER_STORE="${TRACKER_STORE:-sql}"     # bot.conversations.sql_store.CompactSQLTrackerStore
export LOCK_STORE=redis SOCKETIO_MANAGER=redis
# Rasa's per-conversation lock (RedisLockStore). Its lifetime has to outlast the slowest real turn, or a
# second message of the same patron would be processed alongside it on another instance: with the database
# unreachable a turn waits for up to three 5 s connection timeouts (knowledge check, ticket write, its
# queueing fallback) plus NLU, about 20 s. And it is how long a conversation stays blocked when the
# instance holding its lock is killed (nothing releases the lock; it expires). 30 s covers the first with
# room to spare and keeps the second short.
export TICKET_LOCK_LIFETIME="${TICKET_LOCK_LIFETIME:-30}"
export RABBITMQ_PASSWORD="${RABBITMQ_PASSWORD:-guest}"   # the event broker's (run.sh sets the same default)
source scripts/env.sh
.venv/bin/python -m bot.deploy.database "$KNOWLEDGE_DB_URL" "$TRACKER_DB_URL"
exec bash scripts/run.sh --cluster
