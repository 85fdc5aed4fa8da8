# apimdev — the two commands of a fresh machine are `make demo` and `make test`.
GO      ?= go
BIN     ?= ./apimdev
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X github.com/apimdev/apimdev/internal/cli.Version=$(VERSION) \
	-X github.com/apimdev/apimdev/internal/cli.Commit=$(COMMIT) -X github.com/apimdev/apimdev/internal/cli.Date=$(DATE)

.PHONY: build demo dev-up dev-down test e2e fuzz fmt vet clean demo-image node-image cross release-snapshot

build: ## build ./apimdev
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

demo: build ## the first run: the demo gateway (stand-in, not Azure API Management; no Azure, no token, no registry), forwarded, smoke green
	BIN=$(BIN) scripts/demo.sh

node-image: build ## a kind node image built here, offline (about 11 min on 2 cores, once; Linux, root)
	$(BIN) node-image build

dev-up: build ## bring up your gateway (token from APIMDEV_TOKEN or APIMDEV_TOKEN_FILE)
	$(BIN) up --detach

dev-down: build ## remove the cluster and stop the forward
	$(BIN) down

fmt:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

vet: fmt
	$(GO) vet ./...

# -vet=all: go test runs every go vet analyzer (what `make vet` runs) on each
# package, against the packages it compiles for the race build anyway: the
# dependencies are compiled once (with -race), not a second time for go vet
# (from an empty build cache go vet ./... alone took 399 s of CPU here).
test: fmt ## fast tests and go vet, no Docker needed
	$(GO) test -race -count=1 -vet=all ./...

# Each fuzz target runs for FUZZTIME. A crasher fails the run and is written to
# the package's testdata/fuzz/<target>/; commit it: `make test` then replays it
# as a regression case forever. scripts/ci/fuzz.sh also tells Go 1.26's
# fuzztime deadline race (golang/go#75804: "context deadline exceeded", no
# input written) from a finding, and says so.
FUZZTIME ?= 20s

fuzz: ## each fuzz target for a bounded time (FUZZTIME, default 20s)
	scripts/ci/fuzz.sh internal/token FuzzParse $(FUZZTIME)
	scripts/ci/fuzz.sh internal/config FuzzDecode $(FUZZTIME)
	scripts/ci/fuzz.sh internal/smoke FuzzParse $(FUZZTIME)

demo-image: ## the stand-in gateway image `up --demo` runs (stand-in, not Azure API Management): built from this repository's code, FROM scratch, nothing pulled
	scripts/e2e/standin-image.sh

e2e: ## the real thing: Docker, kind, Kubernetes, the stand-in gateway (builds the rig, cached)
	scripts/e2e/run.sh

.PHONY: bench
# Speed against the manual path (kind CLI + kubectl) on the e2e rig, in one run
# of alternating A/B rounds; rewrites the generated part of BENCHMARKS.md. It
# makes kind clusters, so run it under the rig lock:
#   flock /tmp/apimdev-rig.lock make bench
BENCHFLAGS ?=
bench: ## cold/warm up vs kind + kubectl, promote, forward load, RSS (under the rig lock)
	$(GO) run ./scripts/bench -write BENCHMARKS.md $(BENCHFLAGS)

# Every laptop: go vet and go build for linux, darwin and windows on amd64 and
# arm64, then the Windows unit tests and the Windows binary under Wine.
cross: ## one build per set of files of the six targets (the rest: their dependencies resolve), and the Windows tests and binary under Wine (Debian: installs wine64 and mingw-w64)
	scripts/ci/cross.sh

# goreleaser, pinned, installed once into $(TOOLS) from the Go module proxy.
TOOLS              ?= $(HOME)/.cache/apimdev-tools
GORELEASER_VERSION := v2.15.1
GORELEASER         := $(TOOLS)/goreleaser-$(GORELEASER_VERSION)/goreleaser

$(GORELEASER):
	GOBIN=$(dir $(GORELEASER)) $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)

release-snapshot: $(GORELEASER) ## six archives, checksums, a Homebrew formula and a Scoop manifest in dist/, offline
	$(GORELEASER) release --snapshot --clean --skip=publish

clean:
	rm -f $(BIN)
	rm -rf dist
