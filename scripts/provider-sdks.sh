#!/usr/bin/env bash
# CI: webhooks signed by the providers' official SDKs are accepted, and a wrong signature is not.
# Builds callverify, installs twilio, plivo and telnyx from PyPI (pinned) in a throwaway virtual
# environment, then runs tests/provider_sdks/signed_webhooks.py: it starts callverify on loopback
# against the Redis of scripts/with-redis.sh (own key prefix, removed afterwards) with a Twilio,
# a Telnyx and a Plivo account whose Calls APIs are a stub in the same script, starts a
# verification through the API on each, and posts its status and keypress webhooks signed with
# the SDK's own signing helper (Twilio RequestValidator, with the auth token and with a
# SharedKey; Plivo's V3 signature helpers; Telnyx: Ed25519 with a test key, checked first by the
# SDK's own verifier). Each must approve the verification; a wrong signature must be a 403 that
# changes nothing. About two minutes, most of it the install.
#
# Usage: scripts/with-redis.sh scripts/provider-sdks.sh
#   PROVIDER_SDKS_VENV=DIR  reuse a virtual environment that has the SDKs (else a throwaway one
#                           is created in a temp dir and filled from PyPI)
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/throwaway-run.sh
source scripts/lib/throwaway-run.sh sdks

# The SDK versions docs/PROVIDERS.md cites; a new release is taken on purpose, not by accident.
venv="${PROVIDER_SDKS_VENV:-}"
if [[ -z "$venv" ]]; then
  venv="$work/venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "twilio==9.13.*" "plivo==4.63.*" "telnyx==4.189.*" "pynacl==1.5.*" redis
fi

cargo build --quiet --bin callverify
"$venv/bin/python" tests/provider_sdks/signed_webhooks.py \
  --bin target/debug/callverify --work "$work" --redis "$redis_url" --prefix "$prefix"
