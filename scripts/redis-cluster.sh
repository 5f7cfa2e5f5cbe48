#!/usr/bin/env bash
# A throwaway 6-node Redis Cluster on loopback (3 masters, 3 replicas) for tests, the demo and
# the benchmark. Each node is a redis-server process on a free 127.0.0.1 port, its data in one
# temporary directory; nothing else on the machine is touched.
#
#   scripts/redis-cluster.sh start        # prints the seed URLs (comma-separated) on stdout
#   scripts/redis-cluster.sh stop         # stops the nodes, removes the directory
#   scripts/redis-cluster.sh status       # `redis-cli --cluster check` of the running cluster
#   scripts/redis-cluster.sh restart-dead # starts again the nodes that died (after a failover test)
#
# Environment:
#   CALLVERIFY_CLUSTER_DIR      where the nodes keep their state (default /tmp/callverify-cluster)
#   CALLVERIFY_CLUSTER_NODE_TIMEOUT_MS  cluster-node-timeout (default 2000: a failover test
#                               promotes a replica ~2–3 s after its master dies)
set -euo pipefail

dir="${CALLVERIFY_CLUSTER_DIR:-/tmp/callverify-cluster}"
node_timeout="${CALLVERIFY_CLUSTER_NODE_TIMEOUT_MS:-2000}"

fail() { echo "redis-cluster: $*" >&2; exit 1; }

free_port() { # a free loopback port whose cluster-bus port (+10000) is free too
  python3 - <<'EOF'
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    if p + 10000 > 65535: s.close(); continue
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 10000)); b.close(); s.close(); print(p); break
    except OSError:
        s.close(); b.close()
EOF
}

start_node() { # port
  local port=$1
  mkdir -p "$dir/$port"
  redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
    --cluster-config-file "$dir/$port/nodes.conf" --cluster-node-timeout "$node_timeout" \
    --dir "$dir/$port" --save "" --appendonly no --daemonize yes \
    --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log" --loglevel warning
}

urls() {
  local out=() port
  for port in $(cat "$dir/ports"); do out+=("redis://127.0.0.1:$port"); done
  (IFS=,; echo "${out[*]}")
}

case "${1:-}" in
  start)
    command -v redis-server >/dev/null || fail "redis-server is not installed"
    command -v redis-cli >/dev/null || fail "redis-cli is not installed"
    [[ -e "$dir/ports" ]] && fail "a cluster runs already in $dir (stop it first)"
    mkdir -p "$dir"
    ports=()
    for _ in 1 2 3 4 5 6; do
      port=$(free_port)
      start_node "$port"
      ports+=("$port")
    done
    echo "${ports[*]}" >"$dir/ports"
    for port in "${ports[@]}"; do
      for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    done
    nodes=()
    for port in "${ports[@]}"; do nodes+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 ||
      { cat "$dir/create.log" >&2; "$0" stop; fail "cluster create failed"; }
    for _ in $(seq 1 100); do
      ok=1
      for port in "${ports[@]}"; do
        redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok' || ok=0
      done
      [[ $ok == 1 ]] && break
      sleep 0.1
    done
    [[ $ok == 1 ]] || fail "cluster did not reach cluster_state:ok"
    urls
    ;;
  stop)
    [[ -e "$dir/ports" ]] || exit 0
    for port in $(cat "$dir/ports"); do
      if [[ -e "$dir/$port/redis.pid" ]]; then
        pid=$(cat "$dir/$port/redis.pid")
        kill "$pid" 2>/dev/null || true
      fi
    done
    sleep 0.3
    rm -rf "$dir"
    ;;
  restart-dead)
    for port in $(cat "$dir/ports"); do
      redis-cli -p "$port" ping >/dev/null 2>&1 || start_node "$port"
    done
    urls
    ;;
  status)
    redis-cli --cluster check "127.0.0.1:$(cut -d' ' -f1 "$dir/ports")"
    ;;
  urls)
    urls
    ;;
  *)
    fail "usage: $0 start|stop|status|urls|restart-dead"
    ;;
esac
