// Package kubernetes holds tokengate's example Kubernetes manifests (the
// YAML files beside this one: namespace, policy ConfigMap, Deployment,
// Service, PodDisruptionBudget, and an ingress-nginx Ingress that protects
// another service) and the test that keeps them true to the code: the
// probe paths are routes tokengate serves, the ports agree with
// LISTEN_ADDR and the image, every environment variable is one config
// reads and their values load, the grace period covers the drain and the
// shutdown timeout, and the ingress asks a decision endpoint. The package
// has no non-test code besides this comment.
package kubernetes
