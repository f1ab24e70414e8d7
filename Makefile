# Osprey's build, checks, tests and benchmarks. `make test` is what CI runs (.ci/run).

GO ?= go

.PHONY: build test fuzz test-deps check tools bench bench-go bench-serve bench-query bench-detect bench-alerts bench-s3 quickstart clean

build:
	$(GO) build -o bin/osprey ./cmd/osprey
	$(GO) build -o bin/osprey-bench ./cmd/osprey-bench

# The whole test suite: formatting and vet first, what the tests need beyond Go modules, then
# every package's tests under the race detector, then every fuzz target briefly. cmd/osprey's
# tests run the binary against real servers (moto_server, PostgreSQL) for several minutes under
# -race: past go test's default limit of 10 minutes per package on a slow machine.
test: check test-deps tools
	$(GO) test -race -timeout 30m ./...
	@GO=$(GO) ./.ci/fuzz

# Every fuzz target of the repository for FUZZTIME each (default 3s), one after the other.
fuzz:
	@GO=$(GO) ./.ci/fuzz

# Installs (when missing) what tests use beyond Go modules (.ci/deps says which test uses what):
# syslog-ng, logger, moto_server, PostgreSQL's server and the AWS CLI.
test-deps:
	@./.ci/deps

# hyparquet and icebird (pinned in tools/parquet-check/package-lock.json) read back exports in
# query's TestExportReadByHyparquet and Iceberg tables in lake/iceberg's TestReadByIcebird and
# cmd/osprey's TestIcebirdReadsLake.
# Without node those tests skip, saying so.
tools:
	@if command -v node >/dev/null && command -v npm >/dev/null; then \
		cd tools/parquet-check && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "node/npm not found: TestExportReadByHyparquet, TestReadByIcebird and TestIcebirdReadsLake will skip"; fi

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# osprey ingest vs DuckDB's own JSON reader on the same 1 GiB input, in one run.
bench: build
	bin/osprey-bench ingest --size 1GiB --runs 3

# Load test of osprey serve: events/s over HTTP, ack latency p50/p99, daemon RSS.
bench-serve: build
	bin/osprey-bench serve --duration 30s

# Streaming rules: ingest with 50 rules against none, same input, same run (target 70%).
bench-detect: build
	bin/osprey-bench detect --rules 50 --size 1GiB --runs 3

# Alert latency of osprey serve at 5,000 events/s with 50 rules: POST to webhook (target p99 2 s).
bench-alerts: build
	bin/osprey-bench alerts --rate 5000 --duration 30s --rules 50

# The query side: 90-day vs 1-day lake, full scan vs one compacted file, shell startup
# (50M rows, several GB in the temporary directory, kept for the next run; see README).
bench-query: build
	bin/osprey-bench query --rows 50000000 --days 90 --runs 5

# A lake in S3 (moto_server on loopback) against a local lake, same run: osprey ingest of the
# same 300 MiB input (target 0.8x the local speed), and a 1-hour query on the same 90-day lake
# once the S3 lake's files are cached (target within 1.5x); needs moto_server. Cleans up after.
bench-s3: build
	bin/osprey-bench lake-s3 --size 300MiB --runs 5 --rows 20000000 --days 90 --query-runs 51

# Go micro-benchmarks of the hot paths.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./ingest/... ./lake/...

quickstart:
	$(GO) run ./cmd/osprey quickstart

clean:
	rm -rf bin osprey-data tools/parquet-check/node_modules
