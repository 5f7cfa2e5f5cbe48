#!/usr/bin/env bash
# External MFA benchmark: 200 concurrent authorization POSTs (hint validation, sign-in
# state, the call's start admitted through the lifecycle) against one callverify; target p99 < 50 ms
# and no Entra JWKS fetch during the load. See docs/PERFORMANCE.md#external-mfa-the-authorization-post.
#
#   bench/external-mfa-authorize.sh [--signins N] [--rounds N] [--redis URL] [--in-process]
#
# By default callverify runs as its own process (target/release/callverify serve), its provider an
# instant stub Calls API in another (the example itself, as bench_peers' stub), and the example is the fake Entra and the
# load generator. --in-process: everything in one process with the carrier simulator (the layout of
# the first figures). Needs a Redis (default redis://127.0.0.1:6379; only keys under a random
# prefix, deleted at the end). Builds in release.
set -euo pipefail
cd "$(dirname "$0")/.."
ARGS=()
APART=1
for a in "$@"; do
  if [[ "$a" == --in-process ]]; then APART=0; else ARGS+=("$a"); fi
done
cargo build --release --locked --quiet --bin callverify --example external_mfa_load
if (( APART )); then ARGS+=(--apart target/release); fi
exec target/release/examples/external_mfa_load "${ARGS[@]}"
