#!/usr/bin/env bash
# A throwaway Sentinel-managed Redis on loopback (one master, one replica, three sentinels, master
# name `callverify`) for tests and the demo. Each process is a redis-server on a free 127.0.0.1
# port, its files in one temporary directory; nothing else on the machine is touched.
#
#   scripts/redis-sentinel.sh start    # prints the sentinel URLs (comma-separated) on stdout
#   scripts/redis-sentinel.sh stop     # stops every process, removes the directory
#   scripts/redis-sentinel.sh master   # the current master's URL, as the sentinels name it
#   scripts/redis-sentinel.sh urls     # the sentinel URLs again
#
# Environment:
#   CALLVERIFY_SENTINEL_DIR        where the processes keep their files (default /tmp/callverify-sentinel)
#   CALLVERIFY_SENTINEL_DOWN_MS    down-after-milliseconds (default 1000: a failover test sees the
#                                  replica promoted ~2–4 s after its master dies)
set -euo pipefail

dir="${CALLVERIFY_SENTINEL_DIR:-/tmp/callverify-sentinel}"
down_ms="${CALLVERIFY_SENTINEL_DOWN_MS:-1000}"
name=callverify

fail() { echo "redis-sentinel: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ping() { # port
  for _ in $(seq 1 50); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "nothing answers on port $1"
}

start_data_node() { # port [master port]
  local port=$1 master=${2:-}
  mkdir -p "$dir/$port"
  local args=(--bind 127.0.0.1 --port "$port" --dir "$dir/$port" --save "" --appendonly no
    --daemonize yes --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log"
    --loglevel warning)
  [[ -n "$master" ]] && args+=(--replicaof 127.0.0.1 "$master")
  redis-server "${args[@]}"
}

start_sentinel() { # port master-port
  local port=$1 master=$2
  mkdir -p "$dir/$port"
  cat >"$dir/$port/sentinel.conf" <<EOF
bind 127.0.0.1
port $port
dir $dir/$port
daemonize yes
pidfile $dir/$port/redis.pid
logfile $dir/$port/redis.log
sentinel monitor $name 127.0.0.1 $master 2
sentinel down-after-milliseconds $name $down_ms
sentinel failover-timeout $name 10000
sentinel parallel-syncs $name 1
EOF
  redis-server "$dir/$port/sentinel.conf" --sentinel
}

urls() {
  local out=() port
  for port in $(cat "$dir/sentinels"); do out+=("redis://127.0.0.1:$port"); done
  (IFS=,; echo "${out[*]}")
}

case "${1:-}" in
  start)
    command -v redis-server >/dev/null || fail "redis-server is not installed"
    command -v redis-cli >/dev/null || fail "redis-cli is not installed"
    [[ -e "$dir/sentinels" ]] && fail "a sentinel deployment runs already in $dir (stop it first)"
    mkdir -p "$dir"
    master=$(free_port); start_data_node "$master"; wait_ping "$master"
    replica=$(free_port); start_data_node "$replica" "$master"; wait_ping "$replica"
    echo "$master $replica" >"$dir/data"
    sentinels=()
    for _ in 1 2 3; do
      port=$(free_port); start_sentinel "$port" "$master"; sentinels+=("$port")
    done
    echo "${sentinels[*]}" >"$dir/sentinels"
    # Ready: the replica is in sync and every sentinel knows the replica and the other sentinels.
    ok=0
    for _ in $(seq 1 150); do
      ok=1
      redis-cli -p "$replica" info replication | grep -q 'master_link_status:up' || ok=0
      for port in "${sentinels[@]}"; do
        info=$(redis-cli -p "$port" sentinel master "$name" 2>/dev/null | tr '\n' ' ')
        [[ "$info" =~ num-slaves\ 1 && "$info" =~ num-other-sentinels\ 2 ]] || ok=0
      done
      [[ $ok == 1 ]] && break
      sleep 0.2
    done
    [[ $ok == 1 ]] || { "$0" stop; fail "the sentinels did not agree on the master and its replica"; }
    urls
    ;;
  stop)
    [[ -d "$dir" ]] || exit 0
    for pidfile in "$dir"/*/redis.pid; do
      [[ -e "$pidfile" ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 0.3
    rm -rf "$dir"
    ;;
  master)
    port=$(cut -d' ' -f1 "$dir/sentinels")
    addr=$(redis-cli -p "$port" sentinel get-master-addr-by-name "$name" | tr '\n' ' ')
    read -r host mport <<<"$addr"
    echo "redis://$host:$mport"
    ;;
  urls)
    urls
    ;;
  *)
    fail "usage: $0 start|stop|master|urls"
    ;;
esac
