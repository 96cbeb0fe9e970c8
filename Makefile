# loomguard — see README.md. Every target builds what it needs first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

BIN        := $(CURDIR)/bin
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE       ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS    := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
GO_TEST    ?= go test
TEST_FLAGS ?= -count=1 -timeout 30m

.PHONY: all build tools test unit e2e lint docs bench bench-e2e bench-peers fuzz run clean help docker-build deploy-test audit-scale

all: build

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# Two builds of cmd/loomguard: bin/loomguard, the CLI build (check, fix and version in
# process; a sixth of the size and less than half the memory), which runs
# bin/loomguard-full, the full build, for audit, migrate, policies and serve.
build: ## build bin/loomguard (the CLI build) and bin/loomguard-full (every command; the image's /loomguard)
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/loomguard-full ./cmd/loomguard
	CGO_ENABLED=0 go build -trimpath -tags loomguard_cli -ldflags '$(LDFLAGS)' -o $(BIN)/loomguard ./cmd/loomguard

tools: ## build etcd, kube-apiserver, kube-controller-manager, kubectl and helm into bin/ (once; cold on 2 cores ≈ 6 min, + 2.5–5 min for helm)
	bash test/tools/build.sh
	bash test/tools/helm/build.sh

lint: ## gofmt, go vet, and no build outputs in git
	bash hack/check-tree.sh
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	go vet -tags loomguard_cli ./cmd/loomguard

unit: ## unit, golden, webhook and CLI tests (no control plane, no tools)
	$(GO_TEST) $(TEST_FLAGS) $$(go list ./... | grep -v -e /test/e2e -e /test/deploy)

deploy-test: build tools ## render every overlay and the Helm chart; check them with loomguard itself
	LOOMGUARD_BIN=$(BIN) $(GO_TEST) $(TEST_FLAGS) ./test/deploy/...

e2e: build tools ## end-to-end tests on a real local control plane
	LOOMGUARD_BIN=$(BIN) $(GO_TEST) $(TEST_FLAGS) ./test/e2e/...

test: lint build tools ## everything: lint, unit and end-to-end tests; prints the comparison counts last
	rm -f $(BIN)/test-summary.txt
	LOOMGUARD_BIN=$(BIN) LOOMGUARD_TEST_SUMMARY=$(BIN)/test-summary.txt $(GO_TEST) $(TEST_FLAGS) ./...
	@echo "== what the tests compared"; sort $(BIN)/test-summary.txt

docs: ## regenerate docs/policies.md from the policy catalog
	go run ./cmd/loomguard policies -o markdown > docs/policies.md

FUZZTIME ?= 1m
fuzz: ## run each fuzzer for FUZZTIME (default 1m; their seed corpora run in every `go test`), one worker each
	go test ./webhook -run '^$$' -fuzz '^FuzzReview$$' -fuzztime $(FUZZTIME) -parallel 1
	go test ./cmd/loomguard -run '^$$' -fuzz '^FuzzInputReader$$' -fuzztime $(FUZZTIME) -parallel 1
	go test ./policies -run '^$$' -fuzz '^FuzzLoadConfig$$' -fuzztime $(FUZZTIME) -parallel 1
	go test ./policies -run '^$$' -fuzz '^FuzzEngine$$' -fuzztime $(FUZZTIME) -parallel 1
	go test ./mutation -run '^$$' -fuzz '^FuzzDecodeJSON$$' -fuzztime $(FUZZTIME) -parallel 1
	go test ./mutation -run '^$$' -fuzz '^FuzzDiffJSON$$' -fuzztime $(FUZZTIME) -parallel 1

bench: ## engine and handler benchmarks
	go test -run '^$$' -bench . -benchmem ./policies ./webhook ./audit ./cmd/loomguard

BENCH_E2E_FLAGS ?= -rounds 5
bench-e2e: build tools ## what admission costs the API server: none vs in-tree policies vs loomguard with and without matchConditions vs a webhook that does no work, on the local control plane (≈ 11–30 min)
	LOOMGUARD_BIN=$(BIN) go run ./test/bench/e2e $(BENCH_E2E_FLAGS)

# The shared corpus script (shared/ beside the repository); bench-peers writes its corpus
# into a temporary directory.
PEERS_CORPUS_SCRIPT ?= ../shared/bench/make-pod-corpus.py
BENCH_PEERS_FLAGS   ?= -pairs 5
bench-peers: build ## loomguard check vs Gatekeeper's gator test on 1,000 Pods: time, memory, verdicts (≈ 1–2 min; builds bin/gator first, ≈ 2.5 min warm)
	bash test/peers/build.sh
	go run ./test/bench/peers -corpus-script $(PEERS_CORPUS_SCRIPT) $(BENCH_PEERS_FLAGS)

run: build tools ## start a local control plane with loomguard and the example Loom bundle
	go build -o $(BIN)/devcluster ./test/cmd/devcluster
	LOOMGUARD_BIN=$(BIN) $(BIN)/devcluster

audit-scale: build tools ## the audit of 10,000 workloads on the local control plane (≈ 11 min, mostly creating them)
	LOOMGUARD_AUDIT_SCALE=10000 LOOMGUARD_BIN=$(BIN) go test ./test/e2e -run TestAuditScale -count=1 -v -timeout 40m

clean: ## remove built binaries
	rm -rf $(BIN)

IMAGE ?= loomguard:$(VERSION)
docker-build: ## build the container image (needs a Docker engine)
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg DATE=$(DATE) -t $(IMAGE) .
