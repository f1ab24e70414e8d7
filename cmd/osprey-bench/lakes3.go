package main

// osprey-bench lake-s3: a lake in S3 (moto_server on loopback, behind a counting proxy)
// against a lake in a local directory, in the same run: ingest speed, and the time of a
// 1-hour query on a 90-day lake once its files are in the local cache.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ospreyhq/osprey/internal/awsx"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

const benchBucket = "bench"

// benchLakeS3 runs both halves (see the package comment); --skip-ingest or --skip-query runs
// one. Everything it writes (but the input, with --keep-input) is removed at the end.
func benchLakeS3(args []string) error {
	fs := flag.NewFlagSet("lake-s3", flag.ExitOnError)
	size := fs.String("size", "300MiB", "size of the generated Panther.Audit input")
	runs := fs.Int("runs", 3, "ingest runs of each side (the median is reported)")
	rows := fs.Int64("rows", 20_000_000, "rows of the 90-day lakes of the query half")
	days := fs.Int("days", 90, "days of the lakes of the query half")
	qruns := fs.Int("query-runs", 51, "timed runs of each query on each side (the median is reported)")
	threads := fs.Int("threads", 0, "DuckDB threads on both sides (default GOMAXPROCS)")
	dir := fs.String("dir", filepath.Join(os.TempDir(), "osprey-bench-lake-s3"), "working directory (input, lakes), removed at the end")
	keepInput := fs.Bool("keep-input", false, "keep the generated input in --dir for the next run")
	osprey := fs.String("osprey", "bin/osprey", "the osprey binary to measure")
	moto := fs.String("moto", "moto_server", "the moto_server command (the S3 emulator)")
	profile := fs.String("profile", "", "after the timed runs, one more ingest of each side with osprey's --cpuprofile into this directory")
	skipIngest := fs.Bool("skip-ingest", false, "run the query half only")
	skipQuery := fs.Bool("skip-query", false, "run the ingest half only")
	fs.Parse(args)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	defer cleanDir(*dir, *keepInput)

	url, motoCmd, stop, err := startMotoCmd(*moto)
	if err != nil {
		return err
	}
	defer stop()
	counter, err := startCounter(url)
	if err != nil {
		return err
	}
	defer counter.Close()
	// The SDK's standard configuration, for osprey's processes and for this one's lake.
	env := map[string]string{"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
		"AWS_ENDPOINT_URL": counter.URL, "AWS_EC2_METADATA_DISABLED": "true"}
	for k, v := range env {
		os.Setenv(k, v)
	}
	client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("bench", "bench", "")})
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(benchBucket)}); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}
	fmt.Printf("moto_server at %s, behind a counting proxy at %s; %s\n", url, counter.URL, loadAverage())

	if !*skipIngest {
		if err := lakeS3Ingest(ctx, client, counter, motoCmd.Process.Pid, *dir, *size, *runs, *osprey, *profile); err != nil {
			return err
		}
	}
	if !*skipQuery {
		if err := lakeS3Query(ctx, counter, *dir, *rows, *days, *qruns, *threads); err != nil {
			return err
		}
	}
	return nil
}

// lakeS3Ingest times `osprey ingest` of the same input into a local lake and into a lake in
// S3, alternating (and alternating which goes first), and says where the S3 side's time goes.
func lakeS3Ingest(ctx context.Context, client *s3.Client, counter *s3Counter, motoPid int, dir, size string, runs int, osprey, profile string) error {
	n, err := parseSize(size)
	if err != nil {
		return err
	}
	if _, err := os.Stat(osprey); err != nil {
		return fmt.Errorf("%s: build it first (make build): %w", osprey, err)
	}
	input := filepath.Join(dir, "panther_audit.jsonl")
	events, err := generate(input, n)
	if err != nil {
		return err
	}
	if err := warmInput("\ningest input", input, events); err != nil {
		return err
	}

	ingestArgs := []string{"ingest", "--log-type", "Panther.Audit", "--progress", "never", "--quiet", input}
	localDir := filepath.Join(dir, "ingest-local")
	state := filepath.Join(dir, "ingest-state")
	runLocal := func(extra ...string) (result, error) {
		os.RemoveAll(localDir)
		r, err := measure(osprey, append(append([]string{"--lake", localDir}, extra...), ingestArgs...)...)
		if err != nil {
			return r, fmt.Errorf("osprey ingest (local lake): %w", err)
		}
		return r, nil
	}
	run := 0
	runS3 := func(extra ...string) (result, s3Counts, error) {
		run++
		prefix := fmt.Sprintf("ingest-%d", run)
		os.RemoveAll(state)
		counter.snapshot()
		motoCPU := procCPU(motoPid)
		r, err := measure(osprey, append(append([]string{"--lake", "s3://" + benchBucket + "/" + prefix, "--state", state}, extra...), ingestArgs...)...)
		counts := counter.snapshot()
		counts.serverCPU = procCPU(motoPid) - motoCPU
		if err != nil {
			return r, counts, fmt.Errorf("osprey ingest (S3 lake): %w", err)
		}
		// Each run writes a lake of its own; moto keeps objects in memory.
		return r, counts, deletePrefix(ctx, client, prefix+"/")
	}
	var local, remote []result
	var counts []s3Counts
	var ratios []float64 // of each run's pair
	for i := range runs {
		var l, r result
		var c s3Counts
		var err error
		if i%2 == 0 {
			if l, err = runLocal(); err == nil {
				r, c, err = runS3()
			}
		} else {
			if r, c, err = runS3(); err == nil {
				l, err = runLocal()
			}
		}
		if err != nil {
			return err
		}
		local, remote, counts = append(local, l), append(remote, r), append(counts, c)
		ratios = append(ratios, l.elapsed.Seconds()/r.elapsed.Seconds())
		put := c.get("PUT data")
		fmt.Printf("run %d: local %6.2fs (cpu %5.2fs)  s3 %6.2fs (cpu %5.2fs, moto cpu %5.2fs)  ratio %.2f  (%d data files, %s, %.2fs in flight)  %s\n",
			i+1, l.elapsed.Seconds(), l.cpu.Seconds(), r.elapsed.Seconds(), r.cpu.Seconds(), c.serverCPU.Seconds(), ratios[i], put.N, human(put.BytesIn), c.busy.Seconds(), loadAverage())
	}
	lakeSize := dirSize(localDir)
	// The S3 run whose time is the median, for its counts.
	mi := 0
	for i, r := range remote {
		if r.elapsed == median(append([]result(nil), remote...)).elapsed {
			mi = i
		}
	}
	l, r := median(local), median(remote)
	lrs, rrs := float64(events)/l.elapsed.Seconds(), float64(events)/r.elapsed.Seconds()
	fmt.Printf("\n%-40s %12s %10s %10s %12s\n", "", "events/s", "seconds", "cpu", "peak RSS")
	fmt.Printf("%-40s %12.0f %10.2f %10.2f %12s\n", "osprey ingest, local lake", lrs, l.elapsed.Seconds(), l.cpu.Seconds(), human(l.maxRSS))
	fmt.Printf("%-40s %12.0f %10.2f %10.2f %12s\n", "osprey ingest, S3 lake (moto_server)", rrs, r.elapsed.Seconds(), r.cpu.Seconds(), human(r.maxRSS))
	sort.Float64s(ratios)
	fmt.Printf("\nratio S3/local: %.2f of the local speed (medians of %d runs each; median of the runs' own ratios %.2f; target 0.80); lake %s\n",
		rrs/lrs, runs, ratios[len(ratios)/2], human(lakeSize))
	fmt.Printf("S3 requests of the median S3 run (%.2fs):\n", r.elapsed.Seconds())
	counts[mi].print(os.Stdout, "  ")
	fmt.Printf("  %-16s %.2f s of CPU in moto_server during the run\n", "moto", counts[mi].serverCPU.Seconds())
	fmt.Printf("  the S3 run took %.2fs more than the local one; moto had a request in flight for %.2fs of it\n",
		r.elapsed.Seconds()-l.elapsed.Seconds(), counts[mi].busy.Seconds())
	fmt.Println(" ", loadAverage())

	if profile != "" {
		if err := os.MkdirAll(profile, 0o755); err != nil {
			return err
		}
		lp, rp := filepath.Join(profile, "ingest-local.pprof"), filepath.Join(profile, "ingest-s3.pprof")
		if _, err := runLocal("--cpuprofile", lp); err != nil {
			return err
		}
		if _, _, err := runS3("--cpuprofile", rp); err != nil {
			return err
		}
		fmt.Printf("CPU profiles: %s, %s (go tool pprof -top %s %s)\n", lp, rp, osprey, rp)
	}
	os.RemoveAll(localDir)
	os.RemoveAll(state)
	return nil
}

// lakeS3Query writes the same 90-day lake in a local directory and in S3, then times a
// 1-hour count and group-by on both: the S3 lake's first (cold) run, with the GETs it made,
// then warm runs of both sides, alternating.
func lakeS3Query(ctx context.Context, counter *s3Counter, dir string, rows int64, days, runs, threads int) error {
	end := time.Now().UTC().Truncate(time.Hour).Add(time.Hour) // the current hour is the last partition
	hours := days * 24
	perHour := int(rows / int64(hours))
	localDir, state := filepath.Join(dir, "query-local"), filepath.Join(dir, "query-state")
	os.RemoveAll(localDir)
	os.RemoveAll(state)
	local, err := lake.Open(localDir)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := genDaily(ctx, local, end, hours, perHour); err != nil {
		return fmt.Errorf("local lake: %w", err)
	}
	localGen := time.Since(start)
	remote, err := lake.OpenWith(ctx, lake.Options{Dir: state, Location: "s3://" + benchBucket + "/query",
		AWS: awsx.AWS{Region: "us-east-1", Endpoint: counter.URL, PathStyle: true}})
	if err != nil {
		return err
	}
	counter.snapshot()
	start = time.Now()
	if err := genDaily(ctx, remote, end, hours, perHour); err != nil {
		return fmt.Errorf("S3 lake: %w", err)
	}
	remoteGen := time.Since(start)
	genCounts := counter.snapshot()
	files, err := local.Files(ctx, lake.DBLogs, "bench")
	if err != nil {
		return err
	}
	fmt.Printf("\nquery lakes: %d days, %d rows, %d files, %s (written in %.1fs to the local lake, %.1fs to the S3 lake)\n",
		days, int64(perHour)*int64(hours), len(files), human(dirSize(localDir)), localGen.Seconds(), remoteGen.Seconds())
	put := genCounts.get("PUT data")
	fmt.Printf("  S3 lake: %d data files, %s put\n", put.N, human(put.BytesIn))

	// A cold cache: nothing of the lake's data files is local.
	if err := os.RemoveAll(remote.CacheDir()); err != nil {
		return err
	}
	open := func(l *lake.Lake) (*query.DB, error) { return query.Open(ctx, l, query.Options{Threads: threads}) }
	localDB, err := open(local)
	if err != nil {
		return err
	}
	defer localDB.Close()
	// The S3 lake's first query, as `osprey sql` would run it: opening reads the tables'
	// metadata, the query fetches the files it reads into the cache.
	counter.snapshot()
	start = time.Now()
	remoteDB, err := open(remote)
	if err != nil {
		return err
	}
	defer remoteDB.Close()
	opened := time.Since(start)

	queries := []struct{ name, sql string }{
		{"count", "SELECT count(*) AS n FROM panther_logs.bench WHERE p_occurs_since('1 hour')"},
		{"group-by", "SELECT actionName, count(*) AS n, sum(bytes) AS bytes FROM panther_logs.bench WHERE p_occurs_since('1 hour') GROUP BY 1 ORDER BY 1"},
	}
	now := time.Now() // the same for every run, so that all count the same rows
	cold, coldOut, err := timeQuery(ctx, remoteDB, queries[0].sql, now)
	if err != nil {
		return err
	}
	coldCounts := counter.snapshot()
	gd, gm := coldCounts.get("GET data"), coldCounts.get("GET metadata")
	fmt.Printf("\ncold %s on the S3 lake (empty cache): open %.1f ms + first run %.1f ms, %s\n", queries[0].name, ms(opened), ms(cold), summary(coldOut))
	fmt.Printf("  GETs: %d data files (%s) of the lake's %d, %d metadata files (%s)\n", gd.N, human(gd.BytesOut), len(files), gm.N, human(gm.BytesOut))
	coldCounts.print(os.Stdout, "  ")

	fmt.Printf("\nwarm 1-hour queries, median of %d runs each, alternating (target: S3/local within 1.50x):\n", runs)
	for _, q := range queries {
		// One warm-up run of each side (the first fills DuckDB's and the file lists' caches).
		lo, err := warmQuery(ctx, localDB, q.sql, now)
		if err != nil {
			return err
		}
		ro, err := warmQuery(ctx, remoteDB, q.sql, now)
		if err != nil {
			return err
		}
		if lo != ro {
			return fmt.Errorf("%s: the local lake answered %s, the S3 lake %s", q.name, lo, ro)
		}
		var lt, rt []time.Duration
		counter.snapshot()
		for i := range runs {
			sides := []struct {
				db *query.DB
				ts *[]time.Duration
			}{{localDB, &lt}, {remoteDB, &rt}}
			if i%2 == 1 {
				sides[0], sides[1] = sides[1], sides[0]
			}
			for _, s := range sides {
				d, _, err := timeQuery(ctx, s.db, q.sql, now)
				if err != nil {
					return err
				}
				*s.ts = append(*s.ts, d)
			}
		}
		warmCounts := counter.snapshot()
		l, r := medianDuration(lt), medianDuration(rt)
		var gets int
		for k, o := range warmCounts.ops {
			if strings.HasPrefix(k, "GET") {
				gets += o.N
			}
		}
		fmt.Printf("  %-9s local %7.1f ms  S3 %7.1f ms  ratio %.2fx  (%s; GETs during the warm runs: %d)\n",
			q.name, ms(l), ms(r), r.Seconds()/l.Seconds(), summary(lo), gets)
	}
	fmt.Println(" ", loadAverage())
	return nil
}

// genDaily writes perHour rows in each of the hours before end into the table
// panther_logs.bench of l, with a flush a day, and a flush an hour for the last day: the
// layout a compacted lake of osprey serve has (a file per past day, per hour of the current
// day; see genLake), written with a hundred commits rather than thousands.
func genDaily(ctx context.Context, l *lake.Lake, end time.Time, hours, perHour int) error {
	w, err := l.NewWriter(lake.DefaultWriterOptions())
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, benchSchema())
	defer b.Release()
	first := end.Add(-time.Duration(hours) * time.Hour)
	for h := range hours {
		hour := first.Add(time.Duration(h) * time.Hour)
		appendHour(b, hour, perHour)
		next := hour.Add(time.Hour)
		if next.Hour() != 0 && h < hours-24 {
			continue // a day's rows in one batch
		}
		rec := b.NewRecordBatch()
		err := w.Write(ctx, lake.DBLogs, "bench", rec)
		rec.Release()
		if err == nil {
			err = w.Flush(ctx)
		}
		if err != nil {
			return errors.Join(err, w.Abort())
		}
	}
	return w.Close()
}

// timeQuery runs a statement once and returns its time and its rows, as text.
func timeQuery(ctx context.Context, db *query.DB, stmt string, now time.Time) (time.Duration, string, error) {
	start := time.Now()
	rows, err := db.Run(ctx, query.Request{SQL: stmt, Now: now})
	if err != nil {
		return 0, "", err
	}
	out, err := rowsText(rows)
	return time.Since(start), out, err
}

// warmQuery runs a statement once and returns its rows as text.
func warmQuery(ctx context.Context, db *query.DB, stmt string, now time.Time) (string, error) {
	_, out, err := timeQuery(ctx, db, stmt, now)
	return out, err
}

// rowsText reads every row into one line of text, to compare two sides' answers.
func rowsText(rows *query.Rows) (string, error) {
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		return "", err
	}
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return "", err
		}
		lines = append(lines, fmt.Sprint(vals...))
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return "", err
	}
	return strings.Join(lines, "; "), nil
}

// summary shortens an answer for a line of the report.
func summary(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// deletePrefix removes every object under a prefix of the bench bucket.
func deletePrefix(ctx context.Context, c *s3.Client, prefix string) error {
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(benchBucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		objs := make([]types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			objs[i] = types.ObjectIdentifier{Key: o.Key}
		}
		if _, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(benchBucket),
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)}}); err != nil {
			return fmt.Errorf("delete %s: %w", prefix, err)
		}
	}
	return nil
}

// cleanDir removes what the benchmark wrote in dir: all of it, or all but the input.
func cleanDir(dir string, keepInput bool) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if keepInput && strings.HasPrefix(e.Name(), "panther_audit.jsonl") {
			continue
		}
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
	if !keepInput {
		os.Remove(dir)
	}
}

// procCPU returns the user and system time a process has used so far (0 if unknown).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command's ")": state is the 3rd field of the line, utime the 14th.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * time.Second / 100 // clock ticks, 100 a second on Linux
}

// loadAverage returns the machine's load, as uptime prints it, for the report.
func loadAverage() string {
	out, err := exec.Command("uptime").Output()
	if err != nil {
		return "load: unknown"
	}
	s := strings.TrimSpace(string(out))
	if i := strings.Index(s, "load average"); i >= 0 {
		return s[i:]
	}
	return s
}
