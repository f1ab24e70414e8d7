package s3src

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ospreyhq/osprey/durable"
	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/lake"
)

// Manifest is the list of objects a backfill has ingested, so that a rerun ingests nothing
// twice. It is a file of lines "batch<TAB>etag<TAB>key", appended (and synced) before the lake
// flush that holds the objects' rows; the flush records the batch number as commit metadata in
// the same unit as the rows. Lines of a batch past the last committed one are from a run that
// stopped before its flush: they are dropped, and their objects ingested again.
type Manifest struct {
	path  string
	f     *os.File
	done  map[string]string // key -> etag
	batch int64             // the last batch committed
}

// OpenManifest opens (creating) a manifest whose batches up to committed are in the lake.
func OpenManifest(path string, committed int64) (*Manifest, error) {
	m := &Manifest{path: path, done: map[string]string{}, batch: committed}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var kept []string
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) != 3 {
			continue
		}
		b, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil || b > committed {
			continue
		}
		m.done[parts[2]] = parts[1]
		kept = append(kept, line)
	}
	// Rewrite without the lines of uncommitted batches, atomically.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	content := strings.Join(kept, "\n")
	if content != "" {
		content += "\n"
	}
	if err := durable.WriteFile(path, []byte(content), 0o644); err != nil {
		return nil, err
	}
	if m.f, err = os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
		return nil, err
	}
	return m, nil
}

// Done reports whether an object (with this ETag, when known) was ingested.
func (m *Manifest) Done(ref ObjectRef) bool {
	etag, ok := m.done[ref.Key]
	return ok && (ref.ETag == "" || etag == ref.ETag)
}

// Len returns the number of objects ingested.
func (m *Manifest) Len() int { return len(m.done) }

// add records objects of the next batch (synced) and returns the batch's number; the batch
// counts only once committed with it.
func (m *Manifest) add(refs []ObjectRef) (int64, error) {
	next := m.batch + 1
	var b strings.Builder
	for _, r := range refs {
		fmt.Fprintf(&b, "%d\t%s\t%s\n", next, r.ETag, r.Key)
	}
	if _, err := m.f.WriteString(b.String()); err != nil {
		return 0, err
	}
	if err := m.f.Sync(); err != nil {
		return 0, err
	}
	return next, nil
}

// committed marks a batch committed.
func (m *Manifest) committed(batch int64, refs []ObjectRef) {
	m.batch = batch
	for _, r := range refs {
		m.done[r.Key] = r.ETag
	}
}

// Close closes the manifest's file.
func (m *Manifest) Close() error { return m.f.Close() }

// Ingester parses records; *ingest.Ingester is one.
type Ingester interface {
	IngestObjectRecords(ctx context.Context, src *ingest.Source, name string, file batch.SourceFile, records [][]byte, done *sync.WaitGroup) error
}

var _ Ingester = (*ingest.Ingester)(nil)

// BackfillOptions configure Backfill.
type BackfillOptions struct {
	// Prefix lists only the keys under it (within the router's filter).
	Prefix string
	// Since skips objects last modified before it.
	Since time.Time
	// BatchBytes of objects (as stored) are committed together; default 256 MiB.
	BatchBytes int64
	// Concurrency is how many objects are read at once (the time to the first byte of one
	// overlaps the parsing of another); default 4.
	Concurrency int
	Split       SplitOptions
	// Listed, when set, is told the objects to ingest and their bytes once listing is over;
	// Progress the bytes read as reading goes.
	Listed   func(objects int, bytes int64)
	Progress func(n int64)
	// Errors, when set, records objects that cannot be read.
	Errors ErrorRecorder
}

// BackfillStats count what a backfill did.
type BackfillStats struct {
	Listed, Skipped, Ingested, Failed int
	Bytes                             int64 // as stored
	Records                           int64
}

// Backfill lists a bucket's objects and ingests those the manifest does not have. Every
// BatchBytes, and at the end, commit must make everything handed to in durable in the lake with
// the batch number as commit metadata (flush the ingester, then the writer with FlushWith);
// the manifest then counts the batch's objects as done.
func Backfill(ctx context.Context, api S3API, router *Router, in Ingester, m *Manifest,
	commit func(ctx context.Context, batch int64) error, opts BackfillOptions) (BackfillStats, error) {
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 256 << 20
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	var st BackfillStats
	prefix := router.Filter
	if strings.HasPrefix(opts.Prefix, prefix) {
		prefix = opts.Prefix
	} else if !strings.HasPrefix(prefix, opts.Prefix) {
		return st, fmt.Errorf("prefix %q is outside the source's prefix filter %q", opts.Prefix, router.Filter)
	}
	var todo []ObjectRef
	var todoBytes int64
	p := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{Bucket: aws.String(router.Bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return st, fmt.Errorf("list s3://%s/%s: %w", router.Bucket, prefix, err)
		}
		for _, o := range page.Contents {
			st.Listed++
			ref := ObjectRef{Bucket: router.Bucket, Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ETag: strings.Trim(aws.ToString(o.ETag), `"`)}
			_, route := router.Route(ref)
			if !route || ref.Size == 0 || !opts.Since.IsZero() && aws.ToTime(o.LastModified).Before(opts.Since) || m.Done(ref) {
				st.Skipped++
				continue
			}
			todo = append(todo, ref)
			todoBytes += ref.Size
		}
	}
	if opts.Listed != nil {
		opts.Listed(len(todo), todoBytes)
	}
	var (
		mu           sync.Mutex // guards pending, pendingBytes, st and firstErr while objects are read
		pending      []ObjectRef
		pendingBytes int64
		firstErr     error
		wg           sync.WaitGroup // records handed to the ingester
		reading      sync.WaitGroup // objects being read
		sem          = make(chan struct{}, opts.Concurrency)
	)
	flush := func() error {
		reading.Wait()
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
		if len(pending) == 0 {
			return nil
		}
		b, err := m.add(pending)
		if err != nil {
			return fmt.Errorf("backfill manifest: %w", err)
		}
		if err := commit(ctx, b); err != nil {
			return err
		}
		m.committed(b, pending)
		st.Ingested += len(pending)
		pending, pendingBytes = nil, 0
		return nil
	}
	read := func(ref ObjectRef) {
		defer func() { <-sem; reading.Done() }()
		rt, _ := router.Route(ref)
		file := batch.SourceFile{Bucket: ref.Bucket, Key: ref.Key}
		name := "s3://" + ref.Bucket + "/" + ref.Key
		ost, err := ReadObject(ctx, api, ref, 0, opts.Split, opts.Progress, func(recs [][]byte) error {
			return in.IngestObjectRecords(ctx, rt.Source, name, file, recs, &wg)
		})
		var rerr error
		if err != nil && ctx.Err() == nil && opts.Errors != nil {
			se := ingest.SourceError{Time: time.Now(), Source: rt.Source.Source, File: file, Err: err.Error(), Attempts: 1}
			rerr = opts.Errors.Record(ctx, se)
		}
		mu.Lock()
		defer mu.Unlock()
		st.Records += ost.Records
		switch {
		case err != nil && ctx.Err() != nil:
			firstErr = cmp.Or(firstErr, ctx.Err())
			return
		case rerr != nil:
			firstErr = cmp.Or(firstErr, rerr)
			return
		case err != nil:
			// Rows of the records handed on before the error are in the batch: the object
			// counts as ingested (a rerun would duplicate them) and the error is kept.
			st.Failed++
			if ost.Records == 0 {
				return
			}
		}
		st.Bytes += ref.Size
		pending = append(pending, ref)
		pendingBytes += ref.Size
	}
	for _, ref := range todo {
		sem <- struct{}{}
		mu.Lock()
		full, failed := pendingBytes >= opts.BatchBytes, firstErr
		mu.Unlock()
		if failed != nil {
			<-sem
			break
		}
		if full {
			<-sem
			if err := flush(); err != nil {
				return st, err
			}
			sem <- struct{}{}
		}
		reading.Add(1)
		go read(ref)
	}
	return st, flush()
}

// ManifestPath returns where the manifest of a backfill of s3://bucket/prefix is kept in a lake.
func ManifestPath(lakeDir, bucket, prefix string) string {
	return filepath.Join(lake.BackfillDir(lakeDir), BackfillName(bucket, prefix)+".manifest")
}

// BackfillName names the lake writer (and its commit metadata) of a backfill of
// s3://bucket/prefix.
func BackfillName(bucket, prefix string) string {
	var b strings.Builder
	b.WriteString("backfill-")
	for _, r := range bucket + "-" + prefix {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	h := fnv.New32a()
	h.Write([]byte(bucket + "/" + prefix))
	fmt.Fprintf(&b, "-%08x", h.Sum32())
	return b.String()
}
