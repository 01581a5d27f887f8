// Package integration holds the lab's integration tests: they boot the
// real control plane once (zerodrop lab up, from a binary built once) and
// check what issue 8 promises: Deployments become Ready pods answering on
// their own addresses, the termination chain runs in order, drains honour
// PodDisruptionBudgets, lost nodes time out, bad input is reported, and no
// process outlives the lab.
//
// The tests are not built with -tags nolab (the race run): they need the
// full binary, which ZERODROP_LAB_BIN names (scripts/test.sh builds it
// once) or which TestMain builds.
package integration
