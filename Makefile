# tokengate — developer targets. `make help` lists them.

GO          ?= go
BIN         ?= bin/tokengate
BENCH       ?= .
BENCH_COUNT ?= 1
BENCH_TIME  ?= 1s
FUZZTIME    ?= 10s
FUZZTIME_CI ?= 3s
PGO_SECONDS ?= 30
LOADTEST_ARGS ?=

# Build stamps: `tokengate --version`, the log and /metrics show them.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

# The container image: podman if it is there, else docker. ENGINE_FLAGS go
# before the engine's subcommand (CI: --runtime runc --cgroup-manager cgroupfs).
IMAGE        ?= tokengate:latest
ENGINE       ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)
ENGINE_FLAGS ?=
IMAGE_MAX_MB ?= 40

.PHONY: help run build test lint bench e2e interop loadtest k6-shim pgo fuzz fuzz-ci image image-test clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: ## run tokengate with the in-process development issuer (no Okta account needed)
	$(GO) run ./cmd/server --dev

build: ## build bin/tokengate: static (CGO_ENABLED=0), version stamped
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/server

image: build ## build the container image IMAGE (tokengate:latest) from Containerfile
	@test -n "$(ENGINE)" || { echo "make image: neither podman nor docker is installed"; exit 1; }
	$(ENGINE) $(ENGINE_FLAGS) build -f Containerfile -t $(IMAGE) .

# The image test runs containers with --network host: tokengate --dev, the
# README's curl walkthrough, TLS, trust in an https issuer, SIGTERM.
image-test: image ## run the image: walkthrough, TLS, CA trust, graceful stop, size (IMAGE_MAX_MB)
	IMAGE='$(IMAGE)' ENGINE='$(ENGINE)' ENGINE_FLAGS='$(ENGINE_FLAGS)' IMAGE_MAX_MB='$(IMAGE_MAX_MB)' \
		$(GO) test -count=1 -tags image -v -run Image ./deploy/imagetest/

# The allocation guards are built with !race (the race detector makes pooled
# objects allocate), so they get a run of their own without -race.
test: ## unit and integration tests with the race detector, then the allocation guards
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'Alloc' ./auth/ ./authcache/ ./handlers/ ./bench/

lint: ## gofmt check and go vet
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -l: these files need formatting:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The output is benchstat-ready: `make bench BENCH_COUNT=10 > old.txt`,
# change something, `make bench BENCH_COUNT=10 > new.txt`,
# `benchstat old.txt new.txt`.
bench: ## go test benchmarks (BENCH=regexp BENCH_COUNT=n BENCH_TIME=d)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count=$(BENCH_COUNT) -benchtime=$(BENCH_TIME) ./...

e2e: ## drive /docs in headless Chromium
	$(GO) test -race -count=1 -tags e2e -run Browser ./cmd/server/

# Needs Node.js 20.18 or later and the npm registry; npm ci installs exactly what
# interop/oidc-provider/package-lock.json pins.
interop: ## the same flows against a real third-party authorization server (node oidc-provider)
	cd interop/oidc-provider && npm ci --no-audit --no-fund
	$(GO) test -race -count=1 -tags interop -run Interop ./cmd/server/app/

loadtest: ## the load-test harness (LOADTEST_ARGS="-h" for its options)
	$(GO) run ./loadtest $(LOADTEST_ARGS)

# go build and go test use cmd/server/default.pgo by themselves (-pgo=auto);
# refresh it after changing a hot path. Needs wrk.
pgo: ## profile tokengate --dev under wrk and write cmd/server/default.pgo (PGO_SECONDS, 30)
	loadtest/pgo.sh $(PGO_SECONDS)

k6-shim: ## run the k6 scripts through the Node.js shim against tokengate --dev, in every mode
	loadtest/k6shim/ci.sh

# .ci/fuzz.sh builds each package's fuzzing test binary once and runs
# every target of it for the given time, then says how long it all took.
fuzz: ## run every fuzz target for FUZZTIME (10s) each
	GO=$(GO) .ci/fuzz.sh $(FUZZTIME)

fuzz-ci: ## every fuzz target for FUZZTIME_CI (3s) each, as CI runs them
	GO=$(GO) .ci/fuzz.sh $(FUZZTIME_CI)

clean: ## remove build output
	rm -rf bin
