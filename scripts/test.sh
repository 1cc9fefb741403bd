#!/usr/bin/env bash
# Set up and run all tests: unit tests, Rasa's data validation and story tests, end-to-end tests
# against the real servers. The model is trained once (reused when the data has not changed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
export XINGHE_MODEL="$(bash scripts/prepare.sh | tail -n 1)"
mkdir -p test-artifacts
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
