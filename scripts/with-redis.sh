#!/usr/bin/env bash
# Runs a command with a Redis to talk to: the one on 127.0.0.1:6379 if it answers PING, else a
# private, throwaway redis-server on a free loopback port (stopped when the command ends).
# When no redis-server is installed, it installs one first with the package manager it finds
# (apt-get, else dnf, else brew; through sudo when not root), saying so on stderr; when none of
# them exists or the install fails, it stops with one line on stderr and exit status 1.
# Exports CALLVERIFY_TEST_REDIS_URL (tests) and CALLVERIFY__REDIS__URL (the server, the demo).
#
#   scripts/with-redis.sh cargo test
#
# Environment:
#   CALLVERIFY_TEST_REDIS_URL    use this Redis; probe and install nothing
#   CALLVERIFY_REDIS_PROBE_PORT  the port on 127.0.0.1 probed for a running Redis (default 6379);
#                                tests/scripts/with-redis.test.sh points it at a closed port
set -euo pipefail

probe_port="${CALLVERIFY_REDIS_PROBE_PORT:-6379}"

ping_redis() { # host port -> 0 if it answers +PONG (a subshell, so no redirection leaks out)
  (
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf 'PING\r\n' >&3
    reply=""
    read -r -t 2 reply <&3 || true
    [[ "$reply" == +PONG* ]]
  ) 2>/dev/null
}

fail() { echo "with-redis: $*" >&2; exit 1; }

# Installs redis-server with the first package manager found. Its output goes to a log file, so
# a failure is one line that names the log.
install_redis() {
  local manager sudo=()
  if command -v apt-get >/dev/null; then
    manager=apt-get
  elif command -v dnf >/dev/null; then
    manager=dnf
  elif command -v brew >/dev/null; then
    manager=brew
  else
    fail "no Redis on 127.0.0.1:$probe_port and no redis-server, and no apt-get, dnf or brew to install one: install Redis (https://redis.io/docs/latest/operate/oss_and_stack/install/) and retry"
  fi
  if [[ "$manager" != brew && "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null ||
      fail "no Redis on 127.0.0.1:$probe_port and no redis-server; installing it with $manager needs root or sudo: run 'apt-get install -y redis-server' (or dnf install -y redis) as root and retry"
    sudo=(sudo)
  fi
  local log
  log=$(mktemp "${TMPDIR:-/tmp}/with-redis-install.XXXXXX")
  case "$manager" in
    apt-get)
      echo "with-redis: no Redis on 127.0.0.1:$probe_port and no redis-server: installing it (${sudo[*]:+${sudo[*]} }apt-get update && apt-get install -y redis-server) ..." >&2
      { ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } >"$log" 2>&1 ||
        fail "installing redis-server with apt-get failed (its output: $log)"
      ;;
    dnf)
      echo "with-redis: no Redis on 127.0.0.1:$probe_port and no redis-server: installing it (${sudo[*]:+${sudo[*]} }dnf install -y redis) ..." >&2
      ${sudo[@]+"${sudo[@]}"} dnf install -y -q redis >"$log" 2>&1 ||
        fail "installing redis-server with dnf failed (its output: $log)"
      ;;
    brew)
      echo "with-redis: no Redis on 127.0.0.1:$probe_port and no redis-server: installing it (brew install redis) ..." >&2
      brew install redis >"$log" 2>&1 ||
        fail "installing redis-server with brew failed (its output: $log)"
      ;;
  esac
  hash -r
  command -v redis-server >/dev/null ||
    fail "$manager reported success but redis-server is still not on PATH (its output: $log)"
  rm -f "$log"
  echo "with-redis: installed $(command -v redis-server)" >&2
}

if [[ -n "${CALLVERIFY_TEST_REDIS_URL:-}" ]]; then
  url="$CALLVERIFY_TEST_REDIS_URL"
elif ping_redis 127.0.0.1 "$probe_port"; then
  url="redis://127.0.0.1:$probe_port"
else
  command -v redis-server >/dev/null || install_redis
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 6390)
  dir=$(mktemp -d)
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$dir" \
    --daemonize no --loglevel warning >"$dir/redis.log" 2>&1 &
  redis_pid=$!
  trap 'kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
  for _ in $(seq 1 50); do ping_redis 127.0.0.1 "$port" && break; sleep 0.1; done
  ping_redis 127.0.0.1 "$port" || { echo "with-redis: redis-server did not start" >&2; cat "$dir/redis.log" >&2; exit 1; }
  echo "with-redis: started a private redis-server on 127.0.0.1:$port" >&2
  url="redis://127.0.0.1:$port"
fi

export CALLVERIFY_TEST_REDIS_URL="$url"
export CALLVERIFY__REDIS__URL="${CALLVERIFY__REDIS__URL:-$url}"
"$@"
