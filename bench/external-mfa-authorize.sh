#!/usr/bin/env bash
# External MFA benchmark: 200 concurrent authorization POSTs (hint validation, sign-in
# state, the call started through the lifecycle) against one callverify; target p99 < 50 ms and
# no Entra JWKS fetch during the load. See docs/PERFORMANCE.md#external-mfa-the-authorization-post.
#
#   bench/external-mfa-authorize.sh [--signins N] [--redis URL]
#
# Needs a Redis (default redis://127.0.0.1:6379; only keys under a random prefix; users removed
# at the end, sign-ins expire within 10 minutes). Builds in release.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --quiet --example external_mfa_load -- "$@"
