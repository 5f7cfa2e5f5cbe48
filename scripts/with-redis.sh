#!/usr/bin/env bash
# Runs a command with a Redis to talk to: the one on 127.0.0.1:6379 if it answers PING, else a
# private, throwaway redis-server on a free loopback port (stopped when the command ends).
# Exports CALLVERIFY_TEST_REDIS_URL (tests) and CALLVERIFY__REDIS__URL (the server, the demo).
set -euo pipefail

ping_redis() { # host port -> 0 if it answers +PONG (a subshell, so no redirection leaks out)
  (
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf 'PING\r\n' >&3
    reply=""
    read -r -t 2 reply <&3 || true
    [[ "$reply" == +PONG* ]]
  ) 2>/dev/null
}

if [[ -n "${CALLVERIFY_TEST_REDIS_URL:-}" ]]; then
  url="$CALLVERIFY_TEST_REDIS_URL"
elif ping_redis 127.0.0.1 6379; then
  url="redis://127.0.0.1:6379"
else
  if ! command -v redis-server >/dev/null; then
    echo "with-redis: no Redis on 127.0.0.1:6379 and no redis-server installed." >&2
    echo "with-redis: install it first: sudo apt-get install -y redis-server" >&2
    exit 1
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 6390)
  dir=$(mktemp -d)
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$dir" \
    --daemonize no --loglevel warning >"$dir/redis.log" 2>&1 &
  redis_pid=$!
  trap 'kill "$redis_pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
  for _ in $(seq 1 50); do ping_redis 127.0.0.1 "$port" && break; sleep 0.1; done
  ping_redis 127.0.0.1 "$port" || { echo "with-redis: redis-server did not start" >&2; cat "$dir/redis.log" >&2; exit 1; }
  echo "with-redis: started a private redis-server on 127.0.0.1:$port" >&2
  url="redis://127.0.0.1:$port"
fi

export CALLVERIFY_TEST_REDIS_URL="$url"
export CALLVERIFY__REDIS__URL="${CALLVERIFY__REDIS__URL:-$url}"
"$@"
