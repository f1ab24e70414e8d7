# Osprey's build, checks, tests and benchmarks. `make test` is what CI runs (.ci/run).

GO ?= go

.PHONY: build test check bench bench-go quickstart clean

build:
	$(GO) build -o bin/osprey ./cmd/osprey
	$(GO) build -o bin/osprey-bench ./cmd/osprey-bench

# The whole test suite: formatting and vet first, then every package's tests.
test: check
	$(GO) test ./...

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# osprey ingest vs DuckDB's own JSON reader on the same 1 GiB input, in one run.
bench: build
	bin/osprey-bench ingest --size 1GiB --runs 3

# Go micro-benchmarks of the hot paths.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./ingest/... ./lake/...

quickstart:
	$(GO) run ./cmd/osprey quickstart

clean:
	rm -rf bin osprey-data
