# Sourced by scripts that start a callverify against Redis for a check (schemathesis.sh,
# generated-clients.sh): a temp dir ($work), a random key prefix ($prefix, named after $1), the
# Redis URL ($redis_url), and on exit the server ($server_pid) stopped, the prefix's keys deleted
# (with the redis module of the script's $venv, when it has one) and the temp dir removed; and two
# helpers: simulator_config (a callverify build and the start of its configuration) and
# serve_until_ready (the server started, /readyz answering).
work=$(mktemp -d)
server_pid=""
prefix="$1-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
redis_url="${CALLVERIFY__REDIS__URL:-redis://127.0.0.1:6379}"
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ -n "${venv:-}" ]] && "$venv/bin/python" -c 'import redis' 2>/dev/null; then
    "$venv/bin/python" - "$redis_url" "$prefix" <<'EOF' || true
import sys, redis
r = redis.Redis.from_url(sys.argv[1])
keys = list(r.scan_iter(match=sys.argv[2] + ":*", count=1000))
for i in range(0, len(keys), 500):
    r.delete(*keys[i:i + 500])
EOF
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Builds callverify ($bin), picks a free loopback port ($port, $base), makes a portal key
# ($portal_key) and writes the start of $work/callverify.toml: the server, this run's Redis
# prefix and the built-in carrier simulator as the provider. Callers append their tenants.
simulator_config() {
  cargo build --quiet --bin callverify
  bin=target/debug/callverify
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  base="http://127.0.0.1:$port"
  portal_key="portal-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  cat >"$work/callverify.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
public_url = "$base"
[redis]
url = "$redis_url"
prefix = "$prefix"
[provider]
# Calls go to the built-in carrier simulator: nothing leaves the machine.
kind = "simulator"
calls_per_second = 0
TOML
}

# Starts callverify with $work/callverify.toml ($server_pid) and waits until /readyz answers;
# $1 names the script in the error.
serve_until_ready() {
  CALLVERIFY_CONFIG="$work/callverify.toml" RUST_LOG=warn "$bin" serve 2>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "$base/readyz" >/dev/null || { echo "$1: callverify did not become ready" >&2; cat "$work/server.log" >&2; exit 1; }
}
