#!/usr/bin/env bash
# CI: the OpenAPI document is a contract that holds. Builds callverify, starts it on loopback
# against the Redis of scripts/with-redis.sh (own key prefix, removed afterwards) with a portal
# key and an admin key, validates /openapi.json with openapi-spec-validator, then runs
# schemathesis with every check (server errors, status codes, content types, headers, response
# schemas, negative data, …) once per key, bounded in time. Exits non-zero on any finding.
#
# Usage: scripts/with-redis.sh scripts/schemathesis.sh
#   SCHEMATHESIS_VENV=DIR    reuse a virtual environment that has both tools (else a throwaway
#                            one is created in a temp dir and filled from PyPI)
#   SCHEMATHESIS_MAX_TIME=S  time budget per key (default 90 s)
#   SCHEMATHESIS_EXAMPLES=N  test cases per operation and phase (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/throwaway-run.sh
source scripts/lib/throwaway-run.sh schemathesis

venv="${SCHEMATHESIS_VENV:-}"
if [[ -z "$venv" ]]; then
  venv="$work/venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check openapi-spec-validator schemathesis redis
fi

simulator_config
admin_key="admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
cat >>"$work/callverify.toml" <<EOF
[[tenants]]
id = "contoso"
portal_keys_sha256 = ["$("$bin" hash-key "$portal_key")"]
admin_keys_sha256 = ["$("$bin" hash-key "$admin_key")"]
EOF
serve_until_ready schemathesis

curl -fsS "$base/openapi.json" >"$work/openapi.json"
"$venv/bin/openapi-spec-validator" "$work/openapi.json"

# Every route is under /v1/tenants/{tenant}: fuzzing the tenant would only ever meet 403, so the
# fuzzed copy of the document has the configured tenant written into its paths (another tenant's
# 403 is covered by the integration tests). Pinning it with [parameters] instead would turn the
# negative cases that mutate the tenant into valid requests, reported as accepted bad data.
"$venv/bin/python" - "$work/openapi.json" "$work/fuzzed.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
paths = {}
for path, item in doc["paths"].items():
    for op in item.values():
        op["parameters"] = [p for p in op.get("parameters", []) if p["name"] != "tenant"]
    paths[path.replace("{tenant}", "contoso")] = item
doc["paths"] = paths
json.dump(doc, open(sys.argv[2], "w"))
EOF
# positive_data_acceptance: schema-valid values can still be refused on meaning the schema
# cannot state (a number that does not exist, a default no method backs): 422, and 423 for a
# user a fuzzed fraud report blocked.
cat >"$work/schemathesis.toml" <<EOF
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "423", "429"]
EOF

status=0
for key in "$admin_key" "$portal_key"; do
  # From the temp dir: schemathesis keeps a cache in its working directory.
  (cd "$work" && "$venv/bin/schemathesis" --no-color --config-file "$work/schemathesis.toml" run "$work/fuzzed.json" \
    --url "$base" \
    --checks all \
    --header "Authorization: Bearer $key" \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-60}" \
    --max-time "${SCHEMATHESIS_MAX_TIME:-90}" \
    --request-timeout 40 \
    --seed 1 \
    --workers 1 \
    --suppress-health-check all) || status=1
done
if grep -q "panicked" "$work/server.log"; then
  echo "schemathesis: the server panicked" >&2
  status=1
fi
exit "$status"
