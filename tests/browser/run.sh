#!/usr/bin/env bash
# The demo portal in a real browser (Security info, then "Sign in with Entra (simulated)"):
# headless Debian chromium driven by npm's
# playwright-core against `callverify demo --web`. Installs what is missing, quietly (chromium
# from Debian's packages, playwright-core from tests/browser/package-lock.json); both steps are
# skipped when already done. Needs Redis: run it as `scripts/with-redis.sh tests/browser/run.sh`.
#
#   SCREENSHOT_DIR=docs/screenshots tests/browser/run.sh   # refresh the committed screenshots
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ ! -x /usr/bin/chromium ]]; then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "browser test: installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq chromium >/dev/null
fi
if [[ ! -f tests/browser/node_modules/playwright-core/package.json ]]; then
  echo "browser test: installing playwright-core from npm"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

cargo build --quiet
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
target/debug/callverify demo --web --listen "127.0.0.1:$port" >"$log" 2>&1 &
demo=$!
trap 'kill "$demo" 2>/dev/null; wait "$demo" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$demo" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done

export DEMO_URL="http://127.0.0.1:$port"
export SCREENSHOT_DIR="${SCREENSHOT_DIR:-target/browser-screenshots}"
if ! timeout 180 node tests/browser/security-info.test.mjs || ! timeout 180 node tests/browser/entra-signin.test.mjs; then
  echo "browser test failed; the demo's output:" >&2
  cat "$log" >&2
  exit 1
fi
