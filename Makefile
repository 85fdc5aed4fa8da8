# apimdev — the two commands of a fresh machine are `make dev-up` and `make test`.
GO      ?= go
BIN     ?= ./apimdev
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/apimdev/apimdev/internal/cli.Version=$(VERSION)

.PHONY: build dev-up dev-down test e2e fuzz vet clean

build: ## build ./apimdev
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

dev-up: build ## bring up the gateway (token from APIMDEV_TOKEN or APIMDEV_TOKEN_FILE)
	$(BIN) up --detach

dev-down: build ## remove the cluster and stop the forward
	$(BIN) down

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

test: vet ## fast tests, no Docker needed
	$(GO) test -count=1 ./...

fuzz: ## each fuzz target for a bounded time
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 20s ./internal/token/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 20s ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 20s ./internal/smoke/

e2e: ## the real thing: Docker, kind, Kubernetes, the stand-in gateway (builds the rig, cached)
	scripts/e2e/run.sh

clean:
	rm -f $(BIN)
