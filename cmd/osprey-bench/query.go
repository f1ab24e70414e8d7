package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/creack/pty"

	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

// benchQuery generates a lake of --days days (--rows rows in all, flushed every hour, then
// compacted: a file per past day, and per hour of the current day) and a lake of its last day
// only, then in one run:
//   - times the same p_occurs_since('1 hour') aggregate on both (the long lake must be within
//     1.5x of the short one: narrowing opens only the last hour's files);
//   - times a full-scan aggregate over the long lake against DuckDB on the same rows in one
//     Parquet file that DuckDB wrote (within 1.1x);
//   - times `osprey sql` from start to its first prompt on the long lake, in a pseudo-terminal
//     (under 300 ms).
func benchQuery(args []string) error {
	fs := flag.NewFlagSet("query", flag.ExitOnError)
	rows := fs.Int64("rows", 50_000_000, "rows in the long lake")
	days := fs.Int("days", 90, "days of the long lake")
	runs := fs.Int("runs", 5, "runs of each query (the median is reported)")
	dir := fs.String("dir", filepath.Join(os.TempDir(), "osprey-bench-query"), "working directory (lakes, compacted file); reused when the sizes match")
	osprey := fs.String("osprey", "bin/osprey", "the osprey binary, for the shell's startup time")
	threads := fs.Int("threads", 0, "DuckDB threads on both sides (default GOMAXPROCS)")
	fs.Parse(args)
	ctx := context.Background()
	end := time.Now().UTC().Truncate(time.Hour).Add(time.Hour) // the current hour is the last partition
	hours := *days * 24
	perHour := int(*rows / int64(hours))
	long := filepath.Join(*dir, fmt.Sprintf("long-%dd-%d", *days, *rows))
	short := filepath.Join(*dir, fmt.Sprintf("short-1d-%d", *rows))
	if err := genLake(ctx, long, end, hours, perHour); err != nil {
		return err
	}
	if err := genLake(ctx, short, end, 24, perHour); err != nil {
		return err
	}
	fmt.Printf("long lake: %s, %d days, %d rows, %s; short lake: last day, %d rows\n",
		long, *days, int64(perHour)*int64(hours), human(dirSize(long)), perHour*24)

	open := func(dir string) (*query.DB, error) {
		l, err := lake.OpenExisting(dir)
		if err != nil {
			return nil, err
		}
		return query.Open(ctx, l, query.Options{Threads: *threads})
	}
	longDB, err := open(long)
	if err != nil {
		return err
	}
	defer longDB.Close()
	shortDB, err := open(short)
	if err != nil {
		return err
	}
	defer shortDB.Close()

	const recent = "SELECT actionName, count(*) AS n, sum(bytes) AS bytes FROM panther_logs.bench WHERE p_occurs_since('1 hour') GROUP BY 1"
	const full = "SELECT actionName, count(*) AS n, sum(bytes) AS bytes, count(DISTINCT actor) AS actors FROM panther_logs.bench GROUP BY 1"
	// The two lakes alternate, run by run, so that load from elsewhere on the machine falls
	// on both alike; "now" is the same for both, so that they count the same rows.
	now := time.Now()
	var longTimes, shortTimes []time.Duration
	var nl, ns int64
	for range *runs {
		tl, n, err := timeOsprey(ctx, longDB, recent, now, 1)
		if err != nil {
			return err
		}
		longTimes, nl = append(longTimes, tl), n
		ts, n, err := timeOsprey(ctx, shortDB, recent, now, 1)
		if err != nil {
			return err
		}
		shortTimes, ns = append(shortTimes, ts), n
	}
	tl, ts := medianDuration(longTimes), medianDuration(shortTimes)
	if nl != ns {
		return fmt.Errorf("p_occurs_since('1 hour') counted %d rows on the long lake, %d on the short one", nl, ns)
	}
	fmt.Printf("\np_occurs_since('1 hour') aggregate, %d rows in range (median of %d):\n", nl, *runs)
	fmt.Printf("  %d-day lake %8.1f ms\n  1-day lake  %8.1f ms\n  ratio       %8.2fx (limit 1.50x)\n", *days, ms(tl), ms(ts), tl.Seconds()/ts.Seconds())

	compact := filepath.Join(*dir, fmt.Sprintf("compact-%dd-%d.parquet", *days, *rows))
	if err := compactFile(ctx, long, compact); err != nil {
		return err
	}
	plain, err := openPlain(ctx, *threads)
	if err != nil {
		return err
	}
	defer plain.Close()
	// As above, the two sides alternate run by run (each after a warm-up run of its own).
	plainFull := strings.Replace(full, "panther_logs.bench", "read_parquet('"+compact+"')", 1)
	var fullTimes, plainTimes []time.Duration
	var nf, nd int64
	for range *runs {
		t, n, err := timeOsprey(ctx, longDB, full, now, 1)
		if err != nil {
			return err
		}
		fullTimes, nf = append(fullTimes, t), n
		if t, n, err = timePlain(ctx, plain, plainFull, 1); err != nil {
			return err
		}
		plainTimes, nd = append(plainTimes, t), n
	}
	tf, td := medianDuration(fullTimes), medianDuration(plainTimes)
	if nf != nd {
		return fmt.Errorf("full scan counted %d rows through osprey, %d in the compacted file", nf, nd)
	}
	fmt.Printf("\nfull-scan aggregate over %d rows (median of %d):\n", nf, *runs)
	files, err := tableFiles(ctx, long, "bench")
	if err != nil {
		return err
	}
	nfiles := len(files)
	fmt.Printf("  osprey, %d files after compaction %8.1f ms\n  DuckDB, one file of the same rows  %8.1f ms\n  ratio                              %8.2fx (limit 1.10x)\n", nfiles, ms(tf), ms(td), tf.Seconds()/td.Seconds())

	if _, err := os.Stat(*osprey); err != nil {
		fmt.Printf("\nshell startup: %s not found (make build): skipped\n", *osprey)
		return nil
	}
	var starts []time.Duration
	for range *runs {
		d, err := shellStartup(*osprey, long)
		if err != nil {
			return fmt.Errorf("shell startup: %w", err)
		}
		starts = append(starts, d)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	fmt.Printf("\n`osprey sql` start to first prompt on the %d-day lake: %.1f ms (median of %d; limit 300 ms)\n", *days, ms(starts[len(starts)/2]), *runs)
	return nil
}

func medianDuration(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// genLake writes a lake of a table panther_logs.bench with perHour rows in each of the hours
// before end, unless it is there already. An hour's rows depend on the hour only, so two lakes
// of different lengths hold the same last day.
func genLake(ctx context.Context, dir string, end time.Time, hours, perHour int) error {
	if _, err := os.Stat(filepath.Join(lake.StateDir(dir), "bench-complete")); err == nil {
		return nil
	}
	os.RemoveAll(dir)
	fmt.Fprintf(os.Stderr, "generating %s: %d hours of %d rows...\n", dir, hours, perHour)
	l, err := lake.Open(dir)
	if err != nil {
		return err
	}
	w, err := l.NewWriter(lake.DefaultWriterOptions())
	if err != nil {
		return err
	}
	schema := benchSchema()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	first := end.Add(-time.Duration(hours) * time.Hour)
	for h := range hours {
		hour := first.Add(time.Duration(h) * time.Hour)
		appendHour(b, hour, perHour)
		rec := b.NewRecordBatch()
		err := w.Write(ctx, lake.DBLogs, "bench", rec)
		rec.Release()
		if err != nil {
			w.Abort()
			return err
		}
		// A flush an hour, then compaction, as osprey serve leaves a lake.
		if err := w.Flush(ctx); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "compacting %s...\n", dir)
	cw, err := l.NewWriter(lake.DefaultWriterOptions())
	if err != nil {
		return err
	}
	st, err := cw.Compact(ctx, lake.DBLogs, "bench", time.Now(), 2)
	if err := errors.Join(err, cw.Close()); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "compacted %d periods: %d files into %d\n", st.Partitions, st.FilesIn, st.FilesOut)
	return os.WriteFile(filepath.Join(lake.StateDir(dir), "bench-complete"), nil, 0o644)
}

// benchSchema is the schema of the table panther_logs.bench of the generated lakes.
func benchSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "actionName", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "actor", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "sourceIP", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "bytes", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "p_log_type", Type: arrow.BinaryTypes.String},
		{Name: "p_row_id", Type: arrow.BinaryTypes.String, Metadata: arrow.NewMetadata([]string{lake.EncodingKey}, []string{"plain"})},
		{Name: lake.FieldEventTime, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	}, nil)
}

// appendHour appends the perHour rows of an hour, which depend on the hour only, in time order.
func appendHour(b *array.RecordBuilder, hour time.Time, perHour int) {
	rng := rand.New(rand.NewPCG(uint64(hour.Unix()), 7))
	for i := range perHour {
		b.Field(0).(*array.StringBuilder).Append(actionNames[rng.IntN(len(actionNames))])
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("user-%d", rng.IntN(500)))
		b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("10.%d.%d.%d", rng.IntN(4), rng.IntN(256), rng.IntN(256)))
		b.Field(3).(*array.BooleanBuilder).Append(rng.IntN(10) != 0)
		b.Field(4).(*array.Int64Builder).Append(int64(rng.IntN(1 << 20)))
		b.Field(5).(*array.StringBuilder).Append("Bench.Event")
		b.Field(6).(*array.StringBuilder).Append(fmt.Sprintf("%d-%d", hour.Unix(), i))
		b.Field(7).(*array.TimestampBuilder).Append(arrow.Timestamp(hour.Add(time.Duration(i) * time.Hour / time.Duration(perHour)).UnixMicro()))
	}
}

// timeOsprey runs a statement through osprey's query path after a warm-up run, its macros
// counting back from now.
func timeOsprey(ctx context.Context, db *query.DB, stmt string, now time.Time, runs int) (time.Duration, int64, error) {
	var times []time.Duration
	var total int64
	for i := range runs + 1 {
		start := time.Now()
		rows, err := db.Run(ctx, query.Request{SQL: stmt, Now: now})
		if err != nil {
			return 0, 0, err
		}
		var n int64
		for rows.Next() {
			var action string
			var c int64
			var rest []any
			dest := []any{&action, &c}
			cols, _ := rows.Columns()
			for range len(cols) - 2 {
				var x any
				rest = append(rest, &x)
			}
			if err := rows.Scan(append(dest, rest...)...); err != nil {
				rows.Close()
				return 0, 0, err
			}
			n += c
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return 0, 0, err
		}
		if i > 0 {
			times = append(times, time.Since(start))
		}
		total = n
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	return times[len(times)/2], total, nil
}

// compactFile writes every row of the long lake's table into one Parquet file with DuckDB
// (zstd, as the lake), unless it exists.
func compactFile(ctx context.Context, lakeDir, path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	db, err := sql.Open("duckdb", "?autoinstall_known_extensions=false&autoload_known_extensions=false")
	if err != nil {
		return err
	}
	defer db.Close()
	files, err := tableFiles(ctx, lakeDir, "bench")
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, fmt.Sprintf("COPY (SELECT * FROM read_parquet(%s) ORDER BY p_event_time) TO '%s.tmp' (FORMAT parquet, COMPRESSION zstd)", sqlList(files), path))
	if err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// openPlain opens a DuckDB of its own, as a user of DuckDB alone would.
func openPlain(ctx context.Context, threads int) (*sql.DB, error) {
	db, err := sql.Open("duckdb", "?autoinstall_known_extensions=false&autoload_known_extensions=false")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if threads > 0 {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("SET threads = %d", threads)); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// timePlain runs the full-scan statement on a plain DuckDB after a warm-up run.
func timePlain(ctx context.Context, db *sql.DB, stmt string, runs int) (time.Duration, int64, error) {
	var times []time.Duration
	var total int64
	for i := range runs + 1 {
		start := time.Now()
		rows, err := db.QueryContext(ctx, stmt)
		if err != nil {
			return 0, 0, err
		}
		var n int64
		for rows.Next() {
			var action string
			var c int64
			var b, a any
			if err := rows.Scan(&action, &c, &b, &a); err != nil {
				rows.Close()
				return 0, 0, err
			}
			n += c
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return 0, 0, err
		}
		if i > 0 {
			times = append(times, time.Since(start))
		}
		total = n
	}
	return medianDuration(times), total, nil
}

// shellStartup runs `osprey sql` in a pseudo-terminal and returns the time until its prompt.
func shellStartup(osprey, lakeDir string) (time.Duration, error) {
	home, err := os.MkdirTemp("", "osprey-bench-home")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(home)
	cmd := exec.Command(osprey, "sql", "--lake", lakeDir)
	cmd.Env = append(os.Environ(), "HOME="+home, "TERM=xterm")
	start := time.Now()
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		return 0, err
	}
	defer f.Close()
	found := make(chan time.Duration, 1)
	go func() {
		var seen strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			seen.Write(buf[:n])
			if strings.Contains(seen.String(), "osprey>") {
				found <- time.Since(start)
				io.Copy(io.Discard, f)
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "shell printed %q before %v\n", seen.String(), err)
				close(found)
				return
			}
		}
	}()
	var d time.Duration
	var ok bool
	select {
	case d, ok = <-found:
	case <-time.After(30 * time.Second):
	}
	f.Write([]byte{4}) // Ctrl-D
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
	}
	if !ok {
		return 0, errors.New("no prompt")
	}
	return d, nil
}

// tableFiles returns the data files of a table of panther_logs in a lake: those of its Iceberg
// snapshot, not every file in its directory.
func tableFiles(ctx context.Context, dir, table string) ([]string, error) {
	l, err := lake.OpenExisting(dir)
	if err != nil {
		return nil, err
	}
	return l.Files(ctx, lake.DBLogs, table)
}

// sqlList returns paths as an SQL list of strings.
func sqlList(paths []string) string {
	return "['" + strings.Join(paths, "', '") + "']"
}
