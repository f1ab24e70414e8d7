package main

// osprey ingest s3://bucket/prefix: the resumable backfill of a bucket.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/source/s3src"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/serve"
)

// metaBatch is the commit metadata key of a backfill's last committed manifest batch.
const metaBatch = "backfill.batch"

// backfillSource returns the s3 source a backfill reads as: --source's, or one made of the
// flags.
func backfillSource(g *globals, o *ingestOptions, l *lake.Lake, types []*logtypes.LogType, bucket string) (config.Source, error) {
	if o.source == "" {
		src := config.Source{ID: o.sourceID, Label: o.sourceLabel, Type: config.SourceS3,
			S3: &config.S3{Bucket: bucket, Region: o.aws.Region, Endpoint: o.aws.Endpoint, PathStyle: o.aws.PathStyle, RoleARN: o.aws.RoleARN}}
		for _, lt := range types {
			src.LogTypes = append(src.LogTypes, lt.Name)
		}
		return src, nil
	}
	sources, err := config.LoadLakeSources(l.Dir())
	if err != nil {
		return config.Source{}, err
	}
	if o.config != "" {
		cfg, err := config.Load(o.config)
		if err != nil {
			return config.Source{}, err
		}
		sources = append(cfg.Sources, sources...)
	}
	for _, s := range sources {
		if s.ID != o.source {
			continue
		}
		if s.Type != config.SourceS3 {
			return config.Source{}, fmt.Errorf("source %s is a %s source, not s3", s.ID, s.Type)
		}
		if s.S3.Bucket != bucket {
			return config.Source{}, fmt.Errorf("source %s reads the bucket %s, not %s", s.ID, s.S3.Bucket, bucket)
		}
		return s, nil
	}
	return config.Source{}, fmt.Errorf("no source %q in the lake %s or in --config", o.source, l.Dir())
}

func runBackfill(ctx context.Context, g *globals, o *ingestOptions, l *lake.Lake, reg *logtypes.Registry, types []*logtypes.LogType, url string) error {
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(url, "s3://"), "/")
	if bucket == "" {
		return fmt.Errorf("%s: want s3://bucket/prefix", url)
	}
	since, err := parseSince(o.since, time.Now())
	if err != nil {
		return err
	}
	batchBytes, err := parseBytes(o.batchBytes)
	if err != nil {
		return fmt.Errorf("--commit-every: %w", err)
	}
	src, err := backfillSource(g, o, l, types, bucket)
	if err != nil {
		return err
	}
	router, _, err := serve.S3Router(src, reg)
	if err != nil {
		return err
	}
	s3c, _, err := serve.S3AWS(src.S3).Clients(ctx)
	if err != nil {
		return err
	}

	name := s3src.BackfillName(bucket, prefix)
	wopts := defaultWriterOptions(g)
	wopts.Name = name
	w, err := l.NewWriter(wopts)
	if err != nil {
		return err
	}
	meta, err := l.CommitMeta(name)
	if err != nil {
		w.Abort()
		return err
	}
	committed, _ := strconv.ParseInt(meta[metaBatch], 10, 64)
	m, err := s3src.OpenManifest(s3src.ManifestPath(l.Dir(), bucket, prefix), committed)
	if err != nil {
		w.Abort()
		return err
	}
	defer m.Close()
	errWriter, err := l.NewWriter(lake.WriterOptions{Logger: g.logger()})
	if err != nil {
		w.Abort()
		return err
	}
	defer errWriter.Close()
	errs, err := ingest.NewSourceErrors(errWriter)
	if err != nil {
		w.Abort()
		return err
	}
	var sink ingest.Sink = w
	var det *detector
	if !o.noDetect && (len(o.detections) > 0 || o.builtinDet) {
		if det, err = openDetector(ctx, l, config.Detections{Dirs: o.detections, Builtin: o.builtinDet}, w, o.workers, nil, g.logger()); err != nil {
			w.Abort()
			return err
		}
	}
	if det != nil {
		defer det.Close()
		sink = det.engine
	}
	in, err := ingest.New(ctx, sink, ingest.Options{Source: batch.Source{ID: src.ID, Label: src.Label}, Workers: o.workers})
	if err != nil {
		w.Abort()
		return err
	}
	commit := func(ctx context.Context, b int64) error {
		if err := in.Flush(ctx); err != nil {
			return err
		}
		meta := map[string]string{metaBatch: strconv.FormatInt(b, 10)}
		if det == nil {
			return w.FlushWith(ctx, meta)
		}
		// The rules' matches and alert counts are committed with the batch's rows.
		am, err := det.engine.Prepare(ctx, name)
		if err != nil {
			return err
		}
		maps.Copy(meta, am)
		if err := w.FlushWith(ctx, meta); err != nil {
			det.engine.Abort(am)
			return err
		}
		return det.engine.Commit(am)
	}
	start := time.Now()
	var bar *progressbar.ProgressBar
	opts := s3src.BackfillOptions{Prefix: prefix, Since: since, BatchBytes: batchBytes, Errors: errs,
		Listed: func(objects int, bytes int64) {
			if !o.quiet {
				fmt.Fprintf(os.Stderr, "%s: %d objects to ingest (%s), %d ingested before\n", url, objects, bytesText(bytes), m.Len())
			}
			if showProgress(o.progress) && bytes > 0 {
				bar = progressbar.NewOptions64(bytes, progressbar.OptionSetDescription(bucket),
					progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowBytes(true),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
			}
		},
		Progress: func(n int64) {
			if bar != nil {
				bar.Add64(n)
			}
		},
	}
	st, bfErr := s3src.Backfill(ctx, s3c, router, in, m, commit, opts)
	if bar != nil {
		bar.Finish()
	}
	summary, closeErr := in.Close()
	if closeErr != nil {
		w.Abort()
		return closeErr
	}
	interrupted := errors.Is(bfErr, context.Canceled)
	if bfErr != nil {
		// The rows of the batch in progress are not committed, nor are its objects in the
		// manifest: the next run ingests them.
		w.Abort()
		if !interrupted {
			return bfErr
		}
	} else if err := w.Close(); err != nil { // nothing uncommitted remains after the last commit
		return fmt.Errorf("commit: %w", err)
	}
	summary.Duration = time.Since(start)
	summary.Files = st.Ingested
	summary.Bytes = st.Bytes
	printSummary(os.Stderr, summary, w.Stats(), l, o.quiet, interrupted)
	if det != nil && !o.quiet {
		ds := det.engine.Stats()
		fmt.Fprintf(os.Stderr, "detections: %d rules: %s matches, %d alerts raised, %d rule errors\n", det.rules, count(ds.Matches), ds.Raised, ds.RuleErrors)
	}
	if !o.quiet {
		fmt.Fprintf(os.Stderr, "  %d objects listed, %d skipped (ingested before, empty, excluded or older), %d ingested, %d failed\n",
			st.Listed, st.Skipped, st.Ingested, st.Failed)
	}
	if st.Failed > 0 {
		fmt.Fprintf(os.Stderr, "%d objects could not be read; the reasons are in %s.%s\n", st.Failed, ingest.DBMonitor, ingest.TableSourceErrors)
	}
	if summary.Failures > 0 || st.Failed > 0 || len(summary.Errors) > 0 || interrupted {
		return exitError{1}
	}
	return nil
}
