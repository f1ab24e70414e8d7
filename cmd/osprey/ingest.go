package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/source/s3src"
	"github.com/ospreyhq/osprey/ingest/source/stream"
	"github.com/ospreyhq/osprey/lake"
)

// ingestWriter names the lake writer of osprey ingest (its commit metadata carries the alert
// store's epoch).
const ingestWriter = "ingest"

type ingestOptions struct {
	logTypes    []string
	schemas     string
	framing     string
	sourceID    string
	sourceLabel string
	workers     int
	quiet       bool
	progress    string
	memLimit    string
	detections  []string
	builtinDet  bool
	noDetect    bool

	objects bool

	// s3:// backfills
	since      string
	source     string
	config     string
	aws        s3src.AWS
	batchBytes string
}

func newIngest(g *globals) *cobra.Command {
	o := &ingestOptions{}
	cmd := &cobra.Command{
		Use:   "ingest [flags] [FILE... | s3://BUCKET/PREFIX]",
		Short: "Parse log files (or stdin, or an S3 bucket's objects) into the lake",
		Long: `Ingest parses log files into the lake's tables: one row per record, normalized by its log type's
schema, with Panther's p_ standard fields. Files may be plain, gzip or zstd (detected from their
bytes). With no file, or the file "-", it reads stdin.

Each record is tried as the given log types (--log-type, repeatable), or as every built-in and
custom log type when none is given: the summary gives the rows each table got. A record no type
accepts is kept in panther_monitor.classification_failures with its file, line and the reason
each type gave; the rest goes on. The command prints a summary and exits with status 1 when any
record failed.

--schemas DIR adds the custom log types of the schema files (*.yml, *.yaml) in DIR: Custom.MyApp
is the table panther_logs.custom_myapp. A schema may gain fields and indicators over time; one
that removes a field or changes its type is refused before anything is read, since the files
already written keep their columns.

Files of JSON documents (a JSON array, pretty-printed objects, CloudTrail's {"Records": [...]})
are cut into records whatever their lines; --framing says how when the first bytes do not.

Rows are written when the command ends (or a partition's file reaches its size limit): files
appear in the lake whole, never half-written.

With s3://BUCKET/PREFIX it backfills: it lists the objects under the prefix (modified since
--since), and ingests those not ingested before, read as the S3 source reads them (plain, gzip
or zstd; JSON or text lines; CloudTrail files), their rows with the object as p_source_file.
It is resumable: a manifest of the objects ingested (key and ETag) is kept in the lake and
committed with the rows, so a rerun, after an interruption or later, ingests nothing twice.
Streaming rules (--detections, --builtin-detections) run on backfilled events too, their
matches committed with each batch. --source takes the bucket's settings (region, endpoint,
role, prefix rules, p_source_id) from an s3 source of the lake or of --config; otherwise the
flags give them, with the default AWS credential chain.`,
		Example: `  osprey ingest --log-type Linux.Auditd /var/log/audit/audit.log
  osprey ingest --log-type Panther.Audit audit.jsonl.gz
  osprey ingest --schemas ./schemas --log-type Custom.MyApp app.log
  osprey ingest cloudtrail/*.json.gz /var/log/nginx/access.log
  zcat old.log.gz | osprey ingest --log-type Linux.Auditd
  osprey ingest --log-type AWS.CloudTrail --region us-east-1 s3://my-trail/AWSLogs/ --since 2026-01-01
  osprey ingest --source trail s3://my-trail/AWSLogs/123456789012/ --since 2026-11-01`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runIngest(cmd.Context(), g, o, args)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.logTypes, "log-type", "t", nil, "log type of the records (repeatable); default: try every built-in and custom type")
	f.StringVar(&o.schemas, "schemas", "", "directory of custom log schemas (*.yml) to add to the built-in log types")
	f.StringVar(&o.framing, "framing", "auto", "how streams are cut into records: auto (from their first bytes), lines or json")
	f.StringVar(&o.sourceID, "source-id", "cli", "p_source_id of the rows")
	f.StringVar(&o.sourceLabel, "source-label", "osprey ingest", "p_source_label of the rows")
	f.IntVar(&o.workers, "workers", 0, "parsing goroutines (default: one per CPU)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only failures")
	f.StringVar(&o.progress, "progress", "auto", "show a progress bar: auto (when stderr is a terminal), always or never")
	f.StringArrayVar(&o.detections, "detections", nil, "a directory of detection specs whose streaming rules run on the events (repeatable)")
	f.BoolVar(&o.builtinDet, "builtin-detections", false, "run the built-in detection pack's streaming rules too (osprey detect list)")
	f.BoolVar(&o.noDetect, "no-detections", false, "run no streaming rule (a bulk import of old logs that should raise no alert)")
	f.StringVar(&o.memLimit, "memory-limit", "768MiB", "soft limit of the memory the Go runtime aims to stay under (garbage collection works harder near it)")
	f.BoolVar(&o.objects, "objects", false, "read each file whole as the S3 source reads an object: CloudTrail {\"Records\":[...]} files and JSON arrays are split into their records")
	f.StringVar(&o.since, "since", "", "s3: only objects modified since this time (2026-01-01, RFC 3339) or within this long (7d, 12h)")
	f.StringVar(&o.source, "source", "", "s3: take the bucket's settings from this s3 source (of the lake, or of --config)")
	f.StringVar(&o.config, "config", "", "s3: the osprey serve configuration file holding --source")
	f.StringVar(&o.aws.Region, "region", "", "s3: the AWS region")
	f.StringVar(&o.aws.Endpoint, "endpoint", "", "s3: an S3-compatible endpoint")
	f.BoolVar(&o.aws.PathStyle, "path-style", false, "s3: path-style addressing (endpoint/bucket/key)")
	f.StringVar(&o.aws.RoleARN, "role-arn", "", "s3: a role to assume")
	f.StringVar(&o.batchBytes, "commit-every", "256MiB", "s3: commit the rows and the manifest after this many bytes of objects")
	return cmd
}

func runIngest(ctx context.Context, g *globals, o *ingestOptions, files []string) error {
	var s3urls []string
	for _, f := range files {
		if strings.HasPrefix(f, "s3://") {
			s3urls = append(s3urls, f)
		}
	}
	if len(s3urls) > 0 && len(s3urls) != len(files) || len(s3urls) > 1 {
		return errors.New("give local files, or one s3://bucket/prefix")
	}
	if o.memLimit != "" {
		limit, err := parseBytes(o.memLimit)
		if err != nil {
			return fmt.Errorf("--memory-limit: %w", err)
		}
		debug.SetMemoryLimit(limit)
	}
	framing, err := stream.ParseFraming(o.framing)
	if err != nil {
		return fmt.Errorf("--framing: %w", err)
	}
	reg, err := loadRegistry(o.schemas)
	if err != nil {
		return err
	}
	var types []*logtypes.LogType
	if len(o.logTypes) == 0 {
		types = reg.All()
	}
	for _, name := range o.logTypes {
		lt, err := reg.Lookup(name)
		if err != nil {
			return err
		}
		types = append(types, lt)
	}
	l, err := g.openLake()
	if err != nil {
		return err
	}
	// A schema the lake's table cannot take is refused before anything is read.
	var incompatible []error
	for _, lt := range types {
		if err := l.CheckSchema(ingest.DBLogs, lt.Table.Table, lt.Table.Arrow); err != nil {
			incompatible = append(incompatible, fmt.Errorf("log type %s: %w", lt.Name, err))
		}
	}
	if err := errors.Join(incompatible...); err != nil {
		return err
	}
	if len(s3urls) == 1 {
		return runBackfill(ctx, g, o, l, reg, types, s3urls[0])
	}
	wopts := defaultWriterOptions(g)
	wopts.Name = ingestWriter
	w, err := l.NewWriter(wopts)
	if err != nil {
		return err
	}
	log := g.logger()
	var sink ingest.Sink = w
	var det *detector
	if !o.noDetect && (len(o.detections) > 0 || o.builtinDet) {
		if det, err = openDetector(ctx, l, config.Detections{Dirs: o.detections, Builtin: o.builtinDet}, w, o.workers, nil, log); err != nil {
			w.Abort()
			return err
		}
	}
	if det != nil {
		defer det.Close()
		sink = det.engine
	}
	in, err := ingest.New(ctx, sink, ingest.Options{
		LogTypes: types,
		Source:   batch.Source{ID: o.sourceID, Label: o.sourceLabel},
		Workers:  o.workers,
		Framing:  framing,
	})
	if err != nil {
		w.Abort()
		return err
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	start := time.Now()
	var ingestErr error
	src := &ingest.Source{Source: batch.Source{ID: o.sourceID, Label: o.sourceLabel}, LogTypes: types}
	var objFiles int
	var objBytes int64
	if o.objects {
		objFiles, objBytes, ingestErr = ingestObjects(ctx, in, src, files)
	} else {
		for _, name := range files {
			if ingestErr = ingestFile(ctx, in, name, o); ingestErr != nil {
				break
			}
		}
	}
	summary, closeErr := in.Close()
	if closeErr != nil {
		w.Abort()
		return closeErr
	}
	log.Debug("parsed", "elapsed", time.Since(start))
	if det != nil {
		if err := det.flush(ctx, w, ingestWriter); err != nil {
			w.Abort()
			return fmt.Errorf("commit: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	log.Debug("committed", "elapsed", time.Since(start))
	summary.Duration = time.Since(start)
	if o.objects {
		summary.Files, summary.Bytes = objFiles, objBytes
	}
	st := w.Stats()
	interrupted := errors.Is(ingestErr, context.Canceled) || ctx.Err() != nil
	if ingestErr != nil && !interrupted {
		return ingestErr
	}
	printSummary(os.Stderr, summary, st, l, o.quiet, interrupted)
	if det != nil && !o.quiet {
		ds := det.engine.Stats()
		fmt.Fprintf(os.Stderr, "detections: %d rules on %d batches: %s matches, %d alerts raised, %d rule errors (%s evaluating; %s events no rule needed to see)\n",
			det.rules, ds.Batches, count(ds.Matches), ds.Raised, ds.RuleErrors, ds.Evaluating.Round(time.Millisecond), count(ds.Prefiltered))
		if ds.Raised > 0 {
			fmt.Fprintln(os.Stderr, "  osprey alerts list shows the alerts; osprey serve hands them to its destinations when it starts")
		}
	}
	if summary.Failures > 0 || len(summary.Errors) > 0 || interrupted {
		return exitError{1}
	}
	return nil
}

// ingestFile ingests one file or stdin; a file that cannot be opened is reported and skipped.
// SIGINT and SIGTERM (ctx) end it whatever it reads: a FIFO waiting for a writer, a pipe or a
// terminal waiting for data, a device that never ends.
func ingestFile(ctx context.Context, in *ingest.Ingester, name string, o *ingestOptions) error {
	if name == "-" {
		return in.Ingest(ctx, "stdin", stream.Interruptible(ctx, os.Stdin))
	}
	if info, err := os.Stat(name); err == nil && !info.Mode().IsRegular() && !info.IsDir() && !o.quiet {
		fmt.Fprintf(os.Stderr, "osprey ingest: reading %s (%s) until it ends; Ctrl-C stops\n", name, fileKind(info.Mode()))
	}
	f, err := stream.Open(ctx, name)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		in.ReportError(name, err) // printed with the summary; the other files go on
		return nil
	}
	defer f.Close()
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		return in.Ingest(ctx, name, stream.Interruptible(ctx, f))
	}
	var progress func(int64)
	if err == nil && info.Size() > 0 && showProgress(o.progress) {
		bar := progressbar.NewOptions64(info.Size(),
			progressbar.OptionSetDescription(filepath.Base(name)),
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		defer bar.Finish()
		progress = func(n int64) { bar.Add64(n) }
	}
	return in.IngestFile(ctx, name, f, progress)
}

// fileKind names a kind of file that is not a regular one.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}

// objectReaders is how many files --objects reads at once: splitting a file into records
// (decompression, JSON framing) runs on the reading goroutine, as for S3 backfills.
const objectReaders = 4

// ingestObjects ingests files read whole as S3 objects are (--objects), several at once. It
// returns the number of files read and their bytes.
func ingestObjects(ctx context.Context, in *ingest.Ingester, src *ingest.Source, files []string) (int, int64, error) {
	var read atomic.Int64
	var size atomic.Int64
	slots := make(chan struct{}, objectReaders)
	errs := make(chan error, len(files))
	var wg sync.WaitGroup
	for _, name := range files {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			n, err := ingestObject(ctx, in, src, name)
			if n >= 0 {
				read.Add(1)
				size.Add(n)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return int(read.Load()), size.Load(), err
		}
	}
	return int(read.Load()), size.Load(), ctx.Err()
}

// ingestObject ingests a file read whole as an S3 object is (--objects). It returns the file's
// size, or -1 when it could not be opened (reported with the summary).
func ingestObject(ctx context.Context, in *ingest.Ingester, src *ingest.Source, name string) (int64, error) {
	f, err := os.Open(name)
	if err != nil {
		in.ReportError(name, err)
		return -1, nil
	}
	defer f.Close()
	var size int64
	if info, err := f.Stat(); err == nil {
		size = info.Size()
	}
	var wg sync.WaitGroup
	_, err = s3src.Split(f, s3src.SplitOptions{}, func(recs [][]byte) error {
		return in.IngestRecords(ctx, src, name, recs, &wg)
	})
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		in.ReportError(name, err)
		return size, nil
	}
	return size, ctx.Err()
}

func showProgress(mode string) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	return term.IsTerminal(int(os.Stderr.Fd()))
}

func printSummary(w io.Writer, s ingest.Summary, st lake.Stats, l *lake.Lake, quiet, interrupted bool) {
	total := s.Total()
	if !quiet {
		verb := "ingested"
		if interrupted {
			verb = "interrupted; ingested"
		}
		rate := float64(total) / max(s.Duration.Seconds(), 1e-9)
		fmt.Fprintf(w, "%s %s events from %d %s (%s) in %s: %s events/s, %d files written to %s\n",
			verb, count(total), s.Files, plural(s.Files, "stream", "streams"), bytesText(s.Bytes),
			s.Duration.Round(time.Millisecond), count(int64(rate)), st.Files, l.Location())
		tables := make([]string, 0, len(s.Events))
		for t, n := range s.Events {
			if n > 0 { // of the candidate log types, those that got rows
				tables = append(tables, t)
			}
		}
		sort.Strings(tables)
		width := 40
		for _, t := range tables {
			width = max(width, len(ingest.DBLogs)+1+len(t))
		}
		for _, t := range tables {
			fmt.Fprintf(w, "  %-*s %12s\n", width, ingest.DBLogs+"."+t, count(s.Events[t]))
		}
		if s.Blank > 0 {
			fmt.Fprintf(w, "  %d blank lines skipped\n", s.Blank)
		}
		if s.Skipped > 0 {
			fmt.Fprintf(w, "  %d header lines skipped\n", s.Skipped)
		}
		if !s.Latest.IsZero() && s.Latest.After(time.Now().Add(24*time.Hour)) {
			fmt.Fprintf(w, "warning: some events are dated in the future (latest %s); time-bounded queries such as p_occurs_since will not see them until then\n",
				s.Latest.Format(time.RFC3339))
		}
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	if s.Failures > 0 {
		fmt.Fprintf(w, "%s %s could not be parsed and %s kept in %s.%s; to see them:\n  osprey sql -c \"SELECT source, line, error, raw FROM %s.%s ORDER BY p_parse_time DESC LIMIT 20\"\n",
			count(s.Failures), plural(int(s.Failures), "record", "records"), plural(int(s.Failures), "was", "were"),
			ingest.DBMonitor, ingest.TableFailures, ingest.DBMonitor, ingest.TableFailures)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// count formats an integer with thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + count(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// parseBytes reads a size such as 768MiB, 1GB or 512000.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	var n float64
	if _, err := fmt.Sscanf(t, "%g", &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size such as 768MiB", s)
	}
	return int64(n * float64(mult)), nil
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
