package s3src

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/internal/awsx"
)

// S3API is the part of the S3 API the sources use; *s3.Client has it.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

var _ S3API = (*s3.Client)(nil)

// AWS says how to reach AWS (or an S3-compatible store) and with which credentials.
type AWS = awsx.AWS

// Route is where the records of keys under a prefix go: the name they are appended under (a
// source registered with the pipeline) and its source (p_source_id, log types).
type Route struct {
	Prefix  string
	Name    string
	Source  *ingest.Source
	Exclude bool // keys under the prefix are skipped
}

// Router routes keys to log types: the longest matching prefix wins.
type Router struct {
	Bucket string
	// Filter, when set, is the prefix every key must have; other keys are skipped.
	Filter  string
	Default Route
	routes  []Route // by prefix, longest first
}

// NewRouter returns a router of a bucket.
func NewRouter(bucket, filter string, def Route, routes []Route) *Router {
	r := &Router{Bucket: bucket, Filter: filter, Default: def, routes: append([]Route(nil), routes...)}
	sort.SliceStable(r.routes, func(i, j int) bool { return len(r.routes[i].Prefix) > len(r.routes[j].Prefix) })
	return r
}

// Route returns the route of an object, and false when it is skipped (another bucket, outside
// the filter, or excluded).
func (r *Router) Route(ref ObjectRef) (Route, bool) {
	if ref.Bucket != r.Bucket || !strings.HasPrefix(ref.Key, r.Filter) {
		return Route{}, false
	}
	for _, rt := range r.routes {
		if strings.HasPrefix(ref.Key, rt.Prefix) {
			return rt, !rt.Exclude
		}
	}
	return r.Default, !r.Default.Exclude
}

// Routes returns every route, the default first.
func (r *Router) Routes() []Route { return append([]Route{r.Default}, r.routes...) }

// ObjectStats is what reading an object found.
type ObjectStats struct {
	Bytes   int64 // after decompression
	Records int64
	ETag    string
}

// ReadObject gets an object and hands its records to fn a chunk at a time (see Split), from
// record skip on: an object read again after a failure goes on where the first read stopped.
// progress, when not nil, is told the (compressed) bytes read as reading goes.
func ReadObject(ctx context.Context, api S3API, ref ObjectRef, skip int64, opts SplitOptions,
	progress func(int64), fn func(records [][]byte) error) (ObjectStats, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(ref.Bucket), Key: aws.String(ref.Key)}
	if ref.ETag != "" {
		// The records skipped must be those of the same content.
		in.IfMatch = aws.String(`"` + ref.ETag + `"`)
	}
	out, err := api.GetObject(ctx, in)
	if err != nil {
		return ObjectStats{}, fmt.Errorf("get s3://%s/%s: %w", ref.Bucket, ref.Key, err)
	}
	defer out.Body.Close()
	st := ObjectStats{ETag: strings.Trim(aws.ToString(out.ETag), `"`)}
	var body io.Reader = out.Body
	if progress != nil {
		body = io.TeeReader(body, progressWriter(progress))
	}
	n, err := Split(body, opts, func(recs [][]byte) error {
		if skip > 0 {
			k := min(skip, int64(len(recs)))
			skip -= k
			st.Records += k
			recs = recs[k:]
			if len(recs) == 0 {
				return nil
			}
		}
		if err := fn(recs); err != nil {
			return errAppend{err}
		}
		st.Records += int64(len(recs))
		return nil
	})
	st.Bytes = n
	if err != nil {
		var ae errAppend
		if errors.As(err, &ae) {
			return st, ae.err
		}
		return st, fmt.Errorf("read s3://%s/%s: %w", ref.Bucket, ref.Key, err)
	}
	return st, nil
}

// errAppend carries an error of ReadObject's fn through Split unchanged.
type errAppend struct{ err error }

func (e errAppend) Error() string { return e.err.Error() }

type progressWriter func(int64)

func (p progressWriter) Write(b []byte) (int, error) {
	p(int64(len(b)))
	return len(b), nil
}

// Wait waits d or until ctx is done; the default of Options.Wait.
func Wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
