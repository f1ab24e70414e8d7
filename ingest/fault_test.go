//go:build unix

package ingest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/source/stream"
	"golang.org/x/sys/unix"
)

type countSink struct {
	mu   sync.Mutex
	rows map[string]int64
}

func (c *countSink) Write(ctx context.Context, db, table string, rec arrow.RecordBatch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows[db+"."+table] += rec.NumRows()
	return nil
}

// TestWorkerSurvivesTruncatedMapping hands a worker a chunk of a mapped file that was truncated
// under it: the worker keeps the rows it parsed before the lost page, reports the stream as
// truncated and goes on with the next chunk, instead of the process dying of SIGBUS.
func TestWorkerSurvivesTruncatedMapping(t *testing.T) {
	event := `{"actionName":"A","actionResult":"SUCCEEDED","actor":{"id":"u","type":"USER"},"timestamp":"2026-11-22T10:00:00Z","pantherVersion":"1"}` + "\n"
	page := os.Getpagesize()
	data := strings.Repeat(event, 4*page/len(event)+1)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := unix.Mmap(int(f.Fd()), 0, len(data), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := os.Truncate(path, int64(2*page)); err != nil {
		t.Fatal(err)
	}

	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	lt, err := reg.Lookup("Panther.Audit")
	if err != nil {
		t.Fatal(err)
	}
	sink := &countSink{rows: map[string]int64{}}
	in, err := New(context.Background(), sink, Options{LogTypes: []*logtypes.LogType{lt}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	var done sync.WaitGroup
	done.Add(2)
	in.chunks <- job{chunk: stream.Chunk{Data: mem, Line: 1}, source: "truncated", done: &done}
	in.chunks <- job{chunk: stream.Chunk{Data: []byte(event), Line: 1}, source: "next", done: &done}
	done.Wait()
	s, err := in.Close()
	if err != nil {
		t.Fatal(err)
	}
	whole := int64(2 * page / len(event)) // events entirely within the pages left
	if got := sink.rows["panther_logs.panther_audit"]; got != whole+1 {
		t.Errorf("%d rows, want the %d before the lost pages and the next chunk's", got, whole+1)
	}
	if len(s.Errors) != 1 || !strings.Contains(s.Errors[0], "truncated: line 1 and on") ||
		!strings.Contains(s.Errors[0], stream.ErrTruncated.Error()) {
		t.Errorf("errors %q", s.Errors)
	}
	if s.Failures != 0 {
		t.Errorf("%d failures: the lost line is not a bad record", s.Failures)
	}
}
