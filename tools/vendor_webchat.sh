#!/usr/bin/env bash
# Vendor the rasa-webchat browser bundle into bot/services/static/webchat/vendor/ (run by hand when the
# pinned version changes; the result is committed, so serving the chat needs neither npm nor the network).
#
#   bash tools/vendor_webchat.sh            # install the pinned version in a temp dir and copy its bundle
#   bash tools/vendor_webchat.sh --check    # only verify that the committed files match what the script makes
#
# What it does: `npm install` of the pinned version in a throwaway directory, checks the registry's
# integrity hash against the one pinned here, copies lib/index.js (the self-contained UMD bundle: React,
# socket.io-client 3 and the widget; it defines window.WebChat) and the licence, and applies one patch:
# the bundle's CSS @imports the "Inter" font from fonts.googleapis.com, which is slow or unreachable for
# patrons in mainland China and would make every chat page call a third-party host, so those @import
# rules are removed (our stylesheet sets a Chinese font stack instead). The patch is checked to remove
# exactly the expected number of rules; anything unexpected stops the script.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="1.0.1"
INTEGRITY="sha512-Ld1zVJvTAaTrs6A5p8t70agNNrKYRyXlvqXZRgBoDvKKUXbA0jhJKECi5bdPGlaR6jsmqWtVylHS+YqIqo0x8w=="
FONT_IMPORT='@import url(https://fonts.googleapis.com/css?family=Inter:400,500,700&display=swap);'
FONT_IMPORTS_EXPECTED=11
DEST="bot/services/static/webchat/vendor"

check_only=0
[ "${1:-}" = "--check" ] && check_only=1

command -v npm >/dev/null 2>&1 || { echo "npm is needed to vendor the web chat (apt-get install -y npm)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/vendor-webchat.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "==> npm install rasa-webchat@$VERSION (in $work)"
(
  cd "$work"
  echo '{"name": "vendor-webchat", "private": true}' > package.json
  # --ignore-scripts: nothing from the package runs here; --legacy-peer-deps: React is inside the bundle,
  # the peer packages are not needed.
  npm install --ignore-scripts --no-audit --no-fund --legacy-peer-deps --loglevel=error \
    "rasa-webchat@$VERSION" >/dev/null
)

got="$(cd "$work" && node -e 'const l=require("./package-lock.json");const p=l.packages["node_modules/rasa-webchat"];console.log(p.version+" "+p.integrity)')"
if [ "$got" != "$VERSION $INTEGRITY" ]; then
  echo "unexpected package: got '$got', want '$VERSION $INTEGRITY'" >&2
  exit 1
fi

pkg="$work/node_modules/rasa-webchat"
out="$work/out"
mkdir -p "$out"
n="$(grep -oF "$FONT_IMPORT" "$pkg/lib/index.js" | wc -l)"
if [ "$n" != "$FONT_IMPORTS_EXPECTED" ]; then
  echo "expected $FONT_IMPORTS_EXPECTED font @imports in the bundle, found $n: review the patch" >&2
  exit 1
fi
FONT_IMPORT="$FONT_IMPORT" python3 - "$pkg/lib/index.js" "$out/rasa-webchat.js" <<'PY'
import os, sys
src, dst = sys.argv[1], sys.argv[2]
text = open(src, encoding="utf-8").read()
text = text.replace(os.environ["FONT_IMPORT"], "")
if "fonts.googleapis.com" in text:
    sys.exit("a reference to fonts.googleapis.com is left in the bundle")
with open(dst, "w", encoding="utf-8") as fh:
    fh.write(text)
PY
cp "$pkg/LICENSE" "$out/LICENSE"
sha="$(sha256sum "$out/rasa-webchat.js" | cut -d' ' -f1)"
cat > "$out/VERSION.txt" <<EOF
rasa-webchat $VERSION (npm registry, Apache-2.0; see LICENSE)
integrity $INTEGRITY
file rasa-webchat.js = lib/index.js of the package, with its $FONT_IMPORTS_EXPECTED "@import" rules for the
  Inter font from fonts.googleapis.com removed
sha256 $sha
made by tools/vendor_webchat.sh
EOF

if [ "$check_only" = 1 ]; then
  if diff -r "$out" "$DEST" >/dev/null; then
    echo "==> $DEST matches rasa-webchat@$VERSION"
  else
    echo "$DEST differs from what tools/vendor_webchat.sh makes: run it without --check" >&2
    exit 1
  fi
  exit 0
fi

mkdir -p "$DEST"
rm -f "$DEST"/*
cp "$out"/* "$DEST"/
echo "==> vendored rasa-webchat@$VERSION into $DEST ($(du -h "$DEST/rasa-webchat.js" | cut -f1), sha256 ${sha:0:12}…)"
