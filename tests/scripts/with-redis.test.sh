#!/usr/bin/env bash
# Tests scripts/with-redis.sh without touching the machine's packages or its Redis.
#
# Each case runs the helper with `env -i` and a PATH that holds only a sandbox directory: links
# to the few real tools the helper needs (bash, env, mktemp, seq, sleep, cat, rm, python3) plus
# fake `apt-get`, `dnf`, `brew`, `sudo` and `id` shims that log their arguments. The fake package
# managers "install" redis-server by linking the real one into the sandbox (or, when the machine
# has none, a tiny Python stand-in that answers PING). CALLVERIFY_REDIS_PROBE_PORT points the
# helper's probe at a port of our choosing, so the machine's own Redis on 6379 is never seen.
#
#   tests/scripts/with-redis.test.sh        (run by .ci/run; exit 0 when every case passes)
set -euo pipefail

command -v python3 >/dev/null || { echo "with-redis.test: needs python3 (free ports, a stand-in Redis)" >&2; exit 1; }
root=$(cd "$(dirname "$0")/../.." && pwd)
helper="$root/scripts/with-redis.sh"
bash_bin=$(command -v bash)
python_bin=$(python3 -c 'import sys; print(sys.executable)')
real_redis=$(command -v redis-server || true)
ln_bin=$(command -v ln)
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

failures=0
pass() { echo "ok   - $1"; }
flunk() { echo "FAIL - $1"; failures=$((failures + 1)); }

free_port() {
  "$python_bin" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

port_answers() { # port -> 0 if something answers +PONG there
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'PING\r\n' >&3
    r=""
    read -r -t 2 r <&3 || true
    [[ "$r" == +PONG* ]]
  ) 2>/dev/null
}

# A stand-in Redis: answers +PONG to every line, on the port given as `--port N`.
fake_redis_source() {
  cat <<EOF
#!$python_bin
import socket, sys, threading
port = int(sys.argv[sys.argv.index("--port") + 1])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(16)
def serve(conn):
    with conn, conn.makefile("rb") as lines:
        for _ in lines:
            conn.sendall(b"+PONG\r\n")
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
EOF
}

# A sandbox directory for one case; $1.. are the fakes to put in it.
sandbox() {
  local dir tool
  dir=$(mktemp -d "$work/case.XXXXXX")
  mkdir -p "$dir/bin" "$dir/tmp"
  for tool in bash env mktemp seq sleep cat rm; do ln -s "$(command -v "$tool")" "$dir/bin/$tool"; done
  ln -s "$python_bin" "$dir/bin/python3"
  fake_redis_source >"$dir/fake-redis-server"
  chmod +x "$dir/fake-redis-server"
  # What a package manager's install leaves behind.
  local installed="$dir/fake-redis-server"
  [[ -n "$real_redis" ]] && installed="$real_redis"
  for tool in "$@"; do
    case "$tool" in
      apt-get | dnf | brew)
        cat >"$dir/bin/$tool" <<EOF
#!$bash_bin
echo "$tool \$*" >>"$dir/calls.log"
[[ "\${FAKE_PM_EXIT:-0}" == 0 ]] || { echo "E: simulated failure" >&2; exit "\$FAKE_PM_EXIT"; }
[[ "\$1" == install ]] && "$ln_bin" -sf "$installed" "$dir/bin/redis-server"
exit 0
EOF
        chmod +x "$dir/bin/$tool"
        ;;
      sudo)
        cat >"$dir/bin/sudo" <<EOF
#!$bash_bin
echo "sudo \$*" >>"$dir/calls.log"
exec "\$@"
EOF
        chmod +x "$dir/bin/sudo"
        ;;
      id)
        cat >"$dir/bin/id" <<EOF
#!$bash_bin
echo "\${FAKE_UID:-0}"
EOF
        chmod +x "$dir/bin/id"
        ;;
      redis-server) ln -s "$installed" "$dir/bin/redis-server" ;;
    esac
  done
  touch "$dir/calls.log"
  echo "$dir"
}

# Runs the helper in sandbox $1 with probe port $2 (extra VAR=value in $3..), the command being a
# PING of the Redis it was given. Sets out, err, status.
run_helper() {
  local dir="$1" probe="$2"
  shift 2
  set +e
  env -i PATH="$dir/bin" HOME="$dir" TMPDIR="$dir/tmp" CALLVERIFY_REDIS_PROBE_PORT="$probe" "$@" \
    "$bash_bin" "$helper" bash -c '
      port=${CALLVERIFY_TEST_REDIS_URL##*:}
      exec 3<>"/dev/tcp/127.0.0.1/$port"
      printf "PING\r\n" >&3
      read -r -t 2 reply <&3
      echo "url=$CALLVERIFY_TEST_REDIS_URL ping=${reply//[[:space:]]/}"' \
    >"$dir/out" 2>"$dir/err"
  status=$?
  set -e
  out=$(cat "$dir/out")
  err=$(cat "$dir/err")
}

echo "with-redis helper tests (redis-server for fake installs: ${real_redis:-Python stand-in})"

# 1. A Redis answers on the probed port: reused, nothing installed or started.
dir=$(sandbox apt-get sudo id)
port=$(free_port)
"$dir/fake-redis-server" --port "$port" &
pids+=($!)
for _ in $(seq 1 50); do port_answers "$port" && break; sleep 0.1; done
run_helper "$dir" "$port"
if [[ $status == 0 && "$out" == "url=redis://127.0.0.1:$port ping=+PONG" && ! -s "$dir/calls.log" && -z "$err" ]]; then
  pass "a Redis answering on the probed port is reused"
else
  flunk "a Redis answering on the probed port is reused (status $status, out '$out', err '$err', calls '$(cat "$dir/calls.log")')"
fi

# 2. No Redis, redis-server installed: a private one is started, nothing installed.
dir=$(sandbox apt-get sudo id redis-server)
probe=$(free_port)
run_helper "$dir" "$probe"
if [[ $status == 0 && "$out" =~ ^url=redis://127\.0\.0\.1:([0-9]+)\ ping=\+PONG$ && "${BASH_REMATCH[1]}" != "$probe" && ! -s "$dir/calls.log" ]]; then
  private=${BASH_REMATCH[1]}
  if port_answers "$private"; then flunk "the private redis-server is stopped when the command ends"; else pass "no Redis, redis-server present: a private one is started and stopped"; fi
else
  flunk "no Redis, redis-server present (status $status, out '$out', err '$err')"
fi

# 3. No Redis, no redis-server, apt-get, not root: installed through sudo, then started.
dir=$(sandbox apt-get sudo id)
run_helper "$dir" "$(free_port)" FAKE_UID=1000
calls=$(cat "$dir/calls.log")
if [[ $status == 0 && "$out" == *"ping=+PONG" ]] &&
  grep -qx 'sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq' "$dir/calls.log" &&
  grep -qx 'apt-get install -y -qq redis-server' "$dir/calls.log" &&
  [[ "$err" == *"installing it (sudo apt-get update && apt-get install -y redis-server)"* ]]; then
  pass "absent and installable with apt-get as a user: sudo apt-get install, then started"
else
  flunk "absent and installable with apt-get as a user (status $status, out '$out', err '$err', calls '$calls')"
fi

# 4. The same as root: no sudo.
dir=$(sandbox apt-get sudo id)
run_helper "$dir" "$(free_port)" FAKE_UID=0
if [[ $status == 0 && "$out" == *"ping=+PONG" ]] && ! grep -q '^sudo' "$dir/calls.log" &&
  grep -qx 'apt-get install -y -qq redis-server' "$dir/calls.log"; then
  pass "absent and installable with apt-get as root: no sudo"
else
  flunk "absent and installable with apt-get as root (status $status, out '$out', err '$err', calls '$(cat "$dir/calls.log")')"
fi

# 5. Only dnf (as a user), only brew (as a user: brew never runs under sudo).
dir=$(sandbox dnf sudo id)
run_helper "$dir" "$(free_port)" FAKE_UID=1000
if [[ $status == 0 && "$out" == *"ping=+PONG" ]] && grep -qx 'sudo dnf install -y -q redis' "$dir/calls.log"; then
  pass "absent and installable with dnf: sudo dnf install -y redis"
else
  flunk "absent and installable with dnf (status $status, out '$out', err '$err', calls '$(cat "$dir/calls.log")')"
fi
dir=$(sandbox brew sudo id)
run_helper "$dir" "$(free_port)" FAKE_UID=1000
if [[ $status == 0 && "$out" == *"ping=+PONG" ]] && [[ "$(cat "$dir/calls.log")" == "brew install redis" ]]; then
  pass "absent and installable with brew: brew install redis, without sudo"
else
  flunk "absent and installable with brew (status $status, out '$out', err '$err', calls '$(cat "$dir/calls.log")')"
fi

# 6. No package manager at all: one clear line, non-zero, the command never runs.
one_line_failure() { # name expected-text
  if [[ $status != 0 && -z "$out" && "$err" != *$'\n'* && "$err" == "with-redis: "*"$2"* ]]; then
    pass "$1"
  else
    flunk "$1 (status $status, out '$out', err '$err')"
  fi
}
dir=$(sandbox sudo id)
run_helper "$dir" "$(free_port)" FAKE_UID=1000
one_line_failure "absent and not installable: one line, exit non-zero" "no apt-get, dnf or brew to install one"

# 7. Not root and no sudo.
dir=$(sandbox apt-get id)
run_helper "$dir" "$(free_port)" FAKE_UID=1000
one_line_failure "absent, apt-get but neither root nor sudo: one line, exit non-zero" "needs root or sudo"
[[ ! -s "$dir/calls.log" ]] || flunk "apt-get must not run without root or sudo"

# 8. The install fails: the notice, then one failure line naming the log; the command never runs.
dir=$(sandbox apt-get sudo id)
run_helper "$dir" "$(free_port)" FAKE_UID=0 FAKE_PM_EXIT=100
last=${err##*$'\n'}
if [[ $status != 0 && -z "$out" && "$last" == "with-redis: installing redis-server with apt-get failed (its output: "*")" ]]; then
  pass "absent and the install fails: one failure line naming the log, exit non-zero"
else
  flunk "absent and the install fails (status $status, out '$out', err '$err')"
fi

if ((failures > 0)); then
  echo "$failures with-redis helper test(s) failed" >&2
  exit 1
fi
echo "all with-redis helper tests passed"
