// Package ociimage builds the container image of zerodrop without Docker:
// it cross-compiles the slim binary (no lab control plane, CGO_ENABLED=0,
// -trimpath, stripped) for every platform and assembles a multi-platform
// OCI image with go-containerregistry, written as an OCI image layout
// directory or as an OCI archive (a tar of that layout, what "podman load"
// and "skopeo copy oci-archive:" read).
//
// The image is FROM scratch: the binary at /zerodrop, /etc/passwd and
// /etc/group with the nonroot user and group 65532, an empty /tmp (mode
// 1777), and nothing else — no shell, no CA certificates (the binary makes
// no TLS calls to the internet; a PostgreSQL DSN with sslmode=verify-full
// needs a CA bundle mounted by the deployment). Entrypoint ["/zerodrop"],
// command ["serve"], user 65532:65532, and ZERODROP_ADDR=:8000 so that the
// service listens on the container's network, not its loopback.
//
// Layers are written with fixed timestamps and ownership, so the same
// binaries give the same digests.
package ociimage
