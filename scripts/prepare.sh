#!/usr/bin/env bash
# Upgrade the database schema, import knowledge/, regenerate NLU assets from the store, and train a model if
# none matches the data.
# Prints the model path on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
PY=.venv/bin/python
$PY -m bot.migrate upgrade >&2   # before any service starts: the schema every process expects (bot/migrations)
$PY -m bot.kb.cli import --if-new knowledge >&2
$PY -m bot.nlu.assets >&2
# The model's name is a hash of everything training reads, so unchanged data reuses the model.
hash="$(cat config.yml domain.yml $(find data bot/nlu -type f \( -name '*.yml' -o -name '*.txt' -o -name '*.py' \) | sort) | sha256sum | cut -c1-16)"
model="models/xinghe-$hash.tar.gz"
if [ ! -f "$model" ]; then
  echo "==> training $model (a few minutes on 2 cores)" >&2
  start=$(date +%s)
  .venv/bin/rasa train --config config.yml --domain domain.yml --data data --out models --fixed-model-name "xinghe-$hash" >&2
  echo "==> trained in $(( $(date +%s) - start )) s" >&2
fi
echo "$model"
