// Package imagetest runs tokengate's container image the way a user and an
// orchestrator would, with podman or docker on this machine. Its only test
// is behind the build tag "image" and needs an engine and a built image;
// `make image-test` builds both and runs it:
//
//   - the image size, against IMAGE_MAX_MB (40 by default);
//   - --version shows the stamped version and commit;
//   - tokengate --dev inside (--network host, loopback), the README's curl
//     walkthrough against it, /readyz, and `stop` (SIGTERM) exiting 0;
//   - HTTPS on tokengate's own listener (a mounted pair from a test CA),
//     re-read on SIGHUP, in front of an https issuer on the host (the
//     development issuer over TLS), trusted through a mounted CA file and
//     SSL_CERT_FILE: /readyz 200, the walkthrough over https, exit 0;
//   - the same issuer without the CA file: /readyz 503 naming the
//     certificate failure (the compiled-in roots do not trust a test CA).
//
// The environment says what to run: IMAGE (tokengate:latest), ENGINE
// (podman or docker, required), ENGINE_FLAGS (put before each subcommand,
// e.g. "--runtime runc --cgroup-manager cgroupfs"), IMAGE_MAX_MB. The
// package has no non-test code besides this comment.
package imagetest
