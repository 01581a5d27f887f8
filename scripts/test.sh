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
# The full binary (with the lab's control plane) is built once, here, and
# every test that runs the binary uses it: the CLI tests, e2e and the lab's
# integration tests.
mkdir -p bin
echo "test.sh: building bin/zerodrop (the lab's Kubernetes control plane included; minutes when the build cache is cold)"
go build -o bin/zerodrop ./cmd/zerodrop
ZERODROP_BIN=$PWD/bin/zerodrop
export ZERODROP_BIN ZERODROP_E2E_BIN=$ZERODROP_BIN ZERODROP_LAB_BIN=$ZERODROP_BIN
# The slim build (no control plane) is what the in-cluster image carries; the
# lab's pods run it (lab up reads ZERODROP_POD_BIN).
go build -tags nolab -ldflags="-s -w" -o bin/zerodrop-slim ./cmd/zerodrop
export ZERODROP_POD_BIN=$PWD/bin/zerodrop-slim

# -tags nolab: the packages that link the Kubernetes control plane stay out of
# the race build (a race-instrumented k8s.io/kubernetes would double the cold
# build); the lab's own tests run against the normal binary further on.
go test -race -tags nolab -timeout 20m "$@" ./... ./drain/...

# The lab's integration tests boot the real control plane from bin/zerodrop;
# they run without -race (the race detector would have to instrument all of
# Kubernetes, and what they check is the binary's behaviour, not data races;
# the lab's own packages are race-tested above). They need root or
# unprivileged user namespaces for the lab's network namespace.
go test -count=1 -timeout 15m "$@" ./lab/integration/
