# mamori — build and test targets. `make test` is the command CI runs.
GO ?= go

.PHONY: build test test-short vet fuzz bench deps

build:
	$(GO) build -o bin/mamori ./cmd/mamori

# The whole default test run: vet, then every package with the race detector.
# Interop tests need mosquitto-clients, python3-paho-mqtt, openssl and the
# Node packages in test/node (`make deps` or .ci/run installs them).
test: test/node/node_modules
	$(GO) vet ./...
	$(GO) test -race -timeout 14m ./...

test-short:
	$(GO) test -short ./...

test/node/node_modules: test/node/package.json
	cd test/node && npm ci --no-audit --no-fund
	touch test/node/node_modules

vet:
	$(GO) vet ./...
	gofmt -l $$(git ls-files '*.go')

# Fuzz each parser for a short while (FUZZTIME=30s by default).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./internal/packet -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Debian packages and Node modules the tests use (as root).
deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y mosquitto-clients mosquitto python3-paho-mqtt openssl nodejs npm
	cd test/node && npm ci --no-audit --no-fund
