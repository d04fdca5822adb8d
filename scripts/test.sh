#!/usr/bin/env bash
# Runs berth's whole test suite: unit tests, then integration tests in sandbox namespaces (root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node scripts/run-tests.mjs "$@"
