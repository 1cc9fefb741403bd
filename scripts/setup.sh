#!/usr/bin/env bash
# Create .venv with Python 3.10 and install the pinned dependencies (only when the lock file changed).
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  for cand in "${PYTHON:-}" python3.10; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
      command -v "$cand"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | sort -rV); do
      p="$(pyenv prefix "$v")/bin/python"
      [ -x "$p" ] && { echo "$p"; return 0; }
    done
  fi
  return 1
}

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
  if ! py="$(find_python)"; then
    cat >&2 <<'MSG'
Rasa 3.6 needs Python 3.10, and none was found (tried $PYTHON, python3.10 on PATH, pyenv).
Install one, e.g.:  pyenv install 3.10.13   or   sudo apt-get install python3.10 python3.10-venv
then run this command again (or point PYTHON=/path/to/python3.10 at it).
MSG
    exit 1
  fi
  echo "==> creating .venv with $py"
  rm -rf .venv
  "$py" -m venv .venv
fi

stamp=.venv/.requirements.sha
want="$(sha256sum requirements.lock | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing pinned dependencies (first time: about 3 minutes)"
  .venv/bin/python -m pip install --quiet --upgrade "pip<24" wheel
  .venv/bin/python -m pip install --quiet -r requirements.lock
  echo "$want" > "$stamp"
fi

# The desk/web chat/editor app runs in its own environment with a current aiohttp (Rasa 3.6 pins aiohttp<3.10,
# which misses server-side security fixes; README, Security). Same Python, same pins otherwise.
if [ ! -x .venv-web/bin/python ] || ! .venv-web/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
  echo "==> creating .venv-web for the web app"
  rm -rf .venv-web
  "$(.venv/bin/python -c 'import os, sys; print(os.path.join(sys.base_prefix, "bin", "python3.10"))')" -m venv .venv-web
fi
web_stamp=.venv-web/.requirements.sha
web_want="$(sha256sum requirements-web.lock | cut -d' ' -f1)"
if [ "$(cat "$web_stamp" 2>/dev/null)" != "$web_want" ]; then
  echo "==> installing the web app's pinned dependencies"
  .venv-web/bin/python -m pip install --quiet --upgrade "pip<24" wheel
  .venv-web/bin/python -m pip install --quiet -r requirements-web.lock
  echo "$web_want" > "$web_stamp"
fi

# Browser for the web chat tests: tests/test_webchat.py drives Debian's Chromium through Playwright
# (never `playwright install`, which downloads a browser build), plus a Chinese font for its screenshots.
# Installed only when missing, and only as root; otherwise say how.
browser_pkgs=()
[ -x /usr/bin/chromium ] || browser_pkgs+=(chromium)
{ [ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || fc-list :lang=zh 2>/dev/null | grep -q .; } || browser_pkgs+=(fonts-wqy-zenhei)
# supervisord runs the services of `make run` / `make run-cluster` (restarting what dies); nginx fronts the cluster.
command -v supervisord >/dev/null 2>&1 || browser_pkgs+=(supervisor)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || browser_pkgs+=(nginx)
if [ "${#browser_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing ${browser_pkgs[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${browser_pkgs[@]}" >/dev/null
  else
    echo "==> missing ${browser_pkgs[*]} (browser tests, the supervised services). Install with:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y ${browser_pkgs[*]}" >&2
  fi
fi
