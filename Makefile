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

# Fuzz every parser of network or file input in turn, FUZZTIME each (30s
# by default). `go test -fuzz` takes one target per run, hence the loop.
FUZZTIME ?= 30s
FUZZ_TARGETS = \
	internal/packet:FuzzDecode internal/packet:FuzzReaderSplit \
	internal/topic:FuzzTopic internal/config:FuzzParse \
	internal/auth:FuzzParsePasswordFile internal/auth:FuzzParseACL \
	internal/auth:FuzzParsePSKFile internal/auth:FuzzCertUsername \
	internal/pki:FuzzKeyMaterial internal/client:FuzzReadPath \
	internal/broker:FuzzSession internal/bridge:FuzzRemote \
	internal/cli/clientflags:FuzzFormat
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "== $$pkg $$fn"; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME); \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Debian packages and Node modules the tests use (as root).
deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y mosquitto-clients mosquitto python3-paho-mqtt openssl nodejs npm
	cd test/node && npm ci --no-audit --no-fund
