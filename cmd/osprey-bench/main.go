// Command osprey-bench measures osprey against DuckDB on the same input, in the same run.
//
//	osprey-bench ingest [--size 1GiB | --events N --days D --order arrival|sorted|random]
//	                    [--runs 3] [--dir DIR] [--osprey bin/osprey]
//
// generates a Panther.Audit JSON lines file of realistic, varied events (several hundred actors,
// a long tail of actions, nested parameters, errors, X-Forwarded-For chains, both of Panther's
// timestamp layouts, a week (or D days) of event times with late arrivals, in arrival order,
// sorted or shuffled), then alternately runs `osprey ingest --log-type Panther.Audit` on it and
// DuckDB's own COPY (SELECT * FROM read_json('file')) TO 'out.parquet' (one zstd file) through
// duckdb-go, each as a subprocess, and prints the median events/s of both, their ratio and each
// one's peak memory. The file is kept in DIR and reused by later runs with the same parameters.
// Issue 13's figures: --events 600000 --days 30 --order random, and --order sorted.
//
//	osprey-bench serve [--duration 30s] [--clients 16] [--batch 500] [--osprey bin/osprey]
//
// is the load test of osprey serve (see serve.go).
//
//	osprey-bench detect [--rules 50] [--size 1GiB] [--runs 3] [--osprey bin/osprey]
//
// measures what streaming rules cost ingest (see detect.go).
//
//	osprey-bench alerts [--rate 5000] [--duration 30s] [--rules 50] [--osprey bin/osprey]
//
// measures alert latency under load: an event posted to osprey serve to its alert at a
// webhook (see alerts.go).
//
//	osprey-bench query [--rows 50000000] [--days 90] [--runs 5] [--dir DIR] [--osprey bin/osprey]
//
// measures the query side: see benchQuery in query.go.
//
//	osprey-bench s3 [--size 1GiB] [--events 2000] [--runs 3] [--osprey bin/osprey] [--moto moto_server]
//
// writes gzipped CloudTrail log files ({"Records":[...]}, --events events each) totalling
// --size, uploads them to moto_server (started on a loopback port), and alternately runs
// `osprey ingest --objects FILES` (local disk) and `osprey ingest s3://bench/` (the backfill,
// through the S3 API), printing the median events/s of both and their ratio (see s3.go).
//
//	osprey-bench lake-s3 [--size 300MiB] [--runs 3] [--rows 20000000] [--days 90] [--query-runs 51]
//	                     [--osprey bin/osprey] [--moto moto_server] [--profile DIR]
//
// measures a lake in S3 (moto_server on loopback, behind a proxy that counts the requests)
// against a lake in a local directory, in the same run: `osprey ingest` of the same input
// into each, and a 1-hour query on the same 90-day lake in each, once the S3 lake's files are
// in the local cache (see lakes3.go).
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/ospreyhq/osprey/units"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "ingest":
		err = benchIngest(os.Args[2:])
	case "duckdb-copy": // the DuckDB side, run as a subprocess by ingest
		err = duckdbCopy(os.Args[2:])
	case "gen":
		err = gen(os.Args[2:])
	case "serve":
		err = benchServe(os.Args[2:])
	case "detect":
		err = benchDetect(os.Args[2:])
	case "alerts":
		err = benchAlerts(os.Args[2:])
	case "query":
		err = benchQuery(os.Args[2:])
	case "s3":
		err = benchS3(os.Args[2:])
	case "lake-s3":
		err = benchLakeS3(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "osprey-bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage:
  osprey-bench ingest [--size 1GiB] [--runs 3] [--dir DIR] [--osprey PATH]
      osprey ingest vs DuckDB COPY (SELECT * FROM read_json(file)) TO parquet, same input, same run
  osprey-bench serve [--duration 30s] [--clients 16] [--batch 500] [--osprey PATH]
      load test of osprey serve over HTTP on loopback: events/s, ack latency p50/p99, peak RSS
  osprey-bench detect [--rules 50] [--size 1GiB] [--runs 3] [--osprey PATH]
      osprey ingest with no rule vs with N streaming rules, same input, same run
  osprey-bench alerts [--rate 5000] [--duration 30s] [--rules 50] [--osprey PATH]
      alert latency of osprey serve under load: POST of an event to its alert at a webhook
  osprey-bench s3 [--size 1GiB] [--events 2000] [--runs 3] [--osprey PATH] [--moto moto_server]
      osprey ingest of gzipped CloudTrail objects from moto_server's S3 vs the same files from disk
  osprey-bench lake-s3 [--size 300MiB] [--runs 3] [--rows 20000000] [--days 90] [--profile DIR]
      a lake in S3 (moto_server) vs a local lake: osprey ingest of the same input into each, and
      a 1-hour query on the same 90-day lake in each (cold, then with the S3 lake's files cached)
  osprey-bench gen --size 1GiB --out FILE
      write the Panther.Audit input file only
  osprey-bench query [--rows 50000000] [--days 90] [--runs 5] [--dir DIR] [--osprey PATH]
      a 90-day and a 1-day lake: p_occurs_since('1 hour') on both, a full scan against DuckDB
      on one compacted file, and the shell's time to its first prompt`)
	os.Exit(2)
}

// parseSize reads a --size (units.ParseSize).
func parseSize(s string) (int64, error) {
	n, err := units.ParseSize(s)
	if err == nil && n <= 0 {
		err = fmt.Errorf("size %q: want more than 0 bytes", s)
	}
	return n, err
}

func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	size := fs.String("size", "1GiB", "bytes of events to write")
	out := fs.String("out", "panther_audit.jsonl", "output file")
	fs.Parse(args)
	n, err := parseSize(*size)
	if err != nil {
		return err
	}
	events, err := generate(*out, n)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d events\n", *out, events)
	return nil
}

// generate writes the input file unless a complete one of that size is already there; it
// returns the number of events.
func generate(path string, size int64) (int, error) {
	meta := path + ".events"
	if data, err := os.ReadFile(meta); err == nil {
		var events int
		var want int64
		if _, err := fmt.Sscanf(string(data), "%d %d", &events, &want); err == nil && want == size {
			if _, err := os.Stat(path); err == nil {
				return events, nil
			}
		}
	}
	fmt.Fprintf(os.Stderr, "generating %s (%s of Panther.Audit events)...\n", path, human(size))
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return 0, err
	}
	// A fixed end time keeps the file identical across runs; recent, so that time macros see it.
	end := time.Now().UTC().Truncate(24 * time.Hour)
	n, err := writeAudit(f, size, 1, end, 7*24*time.Hour)
	if err := errors.Join(err, f.Close()); err != nil {
		return 0, err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return 0, err
	}
	return n, os.WriteFile(meta, []byte(fmt.Sprintf("%d %d\n", n, size)), 0o644)
}

// generateOrdered writes n events over span, in an order (see writeAuditOrdered), to path,
// unless path exists.
func generateOrdered(path string, n int, span time.Duration, order string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	fmt.Fprintf(os.Stderr, "generating %s (%d Panther.Audit events over %s, %s order)...\n", path, n, span, order)
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	end := time.Now().UTC().Truncate(24 * time.Hour)
	if err := errors.Join(writeAuditOrdered(f, n, 1, end, span, order), f.Close()); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

type result struct {
	elapsed time.Duration
	maxRSS  int64         // bytes
	cpu     time.Duration // user and system
}

func benchIngest(args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ExitOnError)
	size := fs.String("size", "1GiB", "size of the generated input")
	runs := fs.Int("runs", 3, "runs of each side (the median is reported)")
	dir := fs.String("dir", filepath.Join(os.TempDir(), "osprey-bench"), "working directory (input, lakes, outputs)")
	osprey := fs.String("osprey", "bin/osprey", "the osprey binary to measure")
	count := fs.Int("events", 0, "generate this many events (instead of --size)")
	days := fs.Int("days", 7, "days the events' times spread over (with --events)")
	order := fs.String("order", "arrival", "order of the events (with --events): arrival (time order, 2% late), sorted or random")
	fs.Parse(args)
	n, err := parseSize(*size)
	if err != nil {
		return err
	}
	if _, err := os.Stat(*osprey); err != nil {
		return fmt.Errorf("%s: build it first (make build): %w", *osprey, err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	input := filepath.Join(*dir, "panther_audit.jsonl")
	events := *count
	if events > 0 {
		input = filepath.Join(*dir, fmt.Sprintf("panther_audit-%d-%dd-%s.jsonl", events, *days, *order))
		err = generateOrdered(input, events, time.Duration(*days)*24*time.Hour, *order)
	} else {
		events, err = generate(input, n)
	}
	if err != nil {
		return err
	}
	if err := warmInput("input", input, events); err != nil {
		return err
	}
	var ospreyRuns, duckRuns []result
	for i := range *runs {
		lakeDir := filepath.Join(*dir, "lake")
		os.RemoveAll(lakeDir)
		r, err := measure(*osprey, "ingest", "--lake", lakeDir, "--log-type", "Panther.Audit", "--progress", "never", "--quiet", input)
		if err != nil {
			return fmt.Errorf("osprey ingest: %w", err)
		}
		ospreyRuns = append(ospreyRuns, r)
		out := filepath.Join(*dir, "duckdb.parquet")
		os.Remove(out)
		d, err := measure(self, "duckdb-copy", input, out, *dir)
		if err != nil {
			return fmt.Errorf("duckdb: %w", err)
		}
		duckRuns = append(duckRuns, d)
		fmt.Printf("run %d: osprey %6.2fs  duckdb %6.2fs\n", i+1, r.elapsed.Seconds(), d.elapsed.Seconds())
	}
	o, d := median(ospreyRuns), median(duckRuns)
	ors, drs := float64(events)/o.elapsed.Seconds(), float64(events)/d.elapsed.Seconds()
	lakeSize := dirSize(filepath.Join(*dir, "lake"))
	duckSize := dirSize(filepath.Join(*dir, "duckdb.parquet"))
	fmt.Printf("\n%-44s %12s %10s %12s %12s\n", "", "events/s", "seconds", "peak RSS", "output")
	fmt.Printf("%-44s %12.0f %10.2f %12s %12s\n", "osprey ingest (every p_ field, zstd, iceberg)", ors, o.elapsed.Seconds(), human(o.maxRSS), human(lakeSize))
	fmt.Printf("%-44s %12.0f %10.2f %12s %12s\n", "duckdb COPY read_json -> one parquet (zstd)", drs, d.elapsed.Seconds(), human(d.maxRSS), human(duckSize))
	fmt.Printf("\nratio osprey/duckdb: %.2fx events/s (median of %d runs each)\n", ors/drs, *runs)
	return nil
}

// measure runs a command and returns its wall time and peak resident memory.
func measure(name string, args ...string) (result, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if err != nil {
		return result{}, err
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10 // KiB on Linux
	}
	return result{elapsed: elapsed, maxRSS: rss, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}, nil
}

func median(rs []result) result {
	sort.Slice(rs, func(i, j int) bool { return rs[i].elapsed < rs[j].elapsed })
	m := rs[len(rs)/2]
	for _, r := range rs {
		m.maxRSS = max(m.maxRSS, r.maxRSS)
	}
	return m
}

// warmInput reads an input into the page cache and says what it is, after label.
func warmInput(label, path string, events int) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := warm(path); err != nil {
		return err
	}
	fmt.Printf("%s: %s, %d events, %s (page cache warmed)\n", label, path, events, human(info.Size()))
	return nil
}

// warm reads a file so that both sides read it from the page cache.
func warm(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	for {
		if _, err := f.Read(buf); err != nil {
			if err.Error() == "EOF" {
				return nil
			}
			return err
		}
	}
}

func duckdbCopy(args []string) error {
	if len(args) != 3 {
		return errors.New("duckdb-copy INPUT OUTPUT TMPDIR")
	}
	db, err := sql.Open("duckdb", "?autoinstall_known_extensions=false&autoload_known_extensions=false")
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "SET temp_directory = '"+filepath.Join(args[2], "duckdb-tmp")+"'"); err != nil {
		return err
	}
	q := fmt.Sprintf("COPY (SELECT * FROM read_json('%s')) TO '%s' (FORMAT parquet, COMPRESSION zstd)", args[0], args[1])
	_, err = db.ExecContext(ctx, q)
	return err
}

func dirSize(path string) int64 {
	var n int64
	filepath.Walk(path, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
