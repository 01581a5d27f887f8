#!/usr/bin/env bash
# The project's test command (see README): starts a throw-away PostgreSQL on
# loopback (installing it when missing) so the PostgreSQL tests really run,
# then runs every module's tests with the race detector.
# Extra arguments go to 'go test' (for example: scripts/test.sh -run Drain).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use, installed when missing: curl (the doc test
# runs the docs' commands), chromium (the HTML report's headless render
# test), podman and runc (the OCI image's run test).
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v podman >/dev/null 2>&1 || missing+=(podman runc) # runs the built OCI image (ociimage)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]} from Debian"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -z "${ZERODROP_TEST_POSTGRES:-}" ]; then
  ZERODROP_TEST_POSTGRES=$(scripts/postgres.sh)
  export ZERODROP_TEST_POSTGRES
fi
echo "test.sh: PostgreSQL for tests at $ZERODROP_TEST_POSTGRES"
# The binaries are built once, here, and every test that runs one uses it:
# the full build (with the lab's control plane) for the lab's integration
# tests; the slim build (-tags nolab, what the in-cluster image carries) for
# the CLI and e2e tests and for the lab's pods (lab up reads ZERODROP_POD_BIN).
mkdir -p bin
echo "test.sh: building bin/zerodrop (the lab's Kubernetes control plane included; minutes when the build cache is cold)"
go build -o bin/zerodrop ./cmd/zerodrop
go build -tags nolab -ldflags="-s -w" -o bin/zerodrop-slim ./cmd/zerodrop
export ZERODROP_LAB_BIN=$PWD/bin/zerodrop
export ZERODROP_BIN=$PWD/bin/zerodrop-slim ZERODROP_E2E_BIN=$PWD/bin/zerodrop-slim ZERODROP_POD_BIN=$PWD/bin/zerodrop-slim

# -tags nolab: the packages that link the Kubernetes control plane stay out of
# the race build (a race-instrumented k8s.io/kubernetes would double the cold
# build); the lab's own tests run against the normal binary further on.
go test -race -tags nolab -timeout 20m "$@" ./... ./drain/...

# The lab's integration tests (and the deploy manifests' server-side dry-run)
# boot the real control plane from bin/zerodrop;
# they run without -race (the race detector would have to instrument all of
# Kubernetes, and what they check is the binary's behaviour, not data races;
# the lab's own packages are race-tested above). They need root or
# unprivileged user namespaces for the lab's network namespace.
go test -count=1 -timeout 40m "$@" ./lab/integration/ ./deploy/deploytest/
