// Package deploytest holds the tests of the deploy/ manifests: zerodrop
// check on the kustomize overlays (overlays/after clean, overlays/before
// with the seed's problems), and, in builds with the lab (without the
// nolab tag), a server-side dry-run of every overlay against the lab's
// real kube-apiserver.
package deploytest
