# Osprey's build, checks, tests and benchmarks. `make test` is what CI runs (.ci/run).

GO ?= go

.PHONY: build test test-deps check bench bench-go bench-serve quickstart clean

build:
	$(GO) build -o bin/osprey ./cmd/osprey
	$(GO) build -o bin/osprey-bench ./cmd/osprey-bench

# The whole test suite: formatting and vet first, what the tests need beyond Go modules, then
# every package's tests.
test: check test-deps
	$(GO) test ./...

# Installs (when missing) what tests use beyond Go modules: syslog-ng for the shipper test.
test-deps:
	@./.ci/deps

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# osprey ingest vs DuckDB's own JSON reader on the same 1 GiB input, in one run.
bench: build
	bin/osprey-bench ingest --size 1GiB --runs 3

# Load test of osprey serve: events/s over HTTP, ack latency p50/p99, daemon RSS.
bench-serve: build
	bin/osprey-bench serve --duration 30s

# Go micro-benchmarks of the hot paths.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./ingest/... ./lake/...

quickstart:
	$(GO) run ./cmd/osprey quickstart

clean:
	rm -rf bin osprey-data
