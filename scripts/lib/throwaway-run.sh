# Sourced by scripts that start a callverify against Redis for a check (schemathesis.sh,
# generated-clients.sh): a temp dir ($work), a random key prefix ($prefix, named after $1), the
# Redis URL ($redis_url), and on exit the server ($server_pid) stopped, the prefix's keys deleted
# (with the redis module of the script's $venv, when it has one) and the temp dir removed.
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
