#!/usr/bin/env bash
# The project's test command (see README): starts a throw-away PostgreSQL on
# loopback (installing it when missing) so the PostgreSQL tests really run,
# then runs every module's tests with the race detector.
# Extra arguments go to 'go test' (for example: scripts/test.sh -run Drain).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${ZERODROP_TEST_POSTGRES:-}" ]; then
  ZERODROP_TEST_POSTGRES=$(scripts/postgres.sh)
  export ZERODROP_TEST_POSTGRES
fi
echo "test.sh: PostgreSQL for tests at $ZERODROP_TEST_POSTGRES"
# -tags nolab: the packages that link the Kubernetes control plane stay out of
# the race build (a race-instrumented k8s.io/kubernetes would double the cold
# build); the lab's own tests run against the normal binary further on.
go test -race -tags nolab -timeout 20m "$@" ./... ./drain/...
