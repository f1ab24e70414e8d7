package lake

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestRecover fails a flush half way through publishing (one partition's file renamed, the
// other's directory blocked) and recovers the writer: while the flush cannot be finished,
// Recover fails and records nothing; once it can, the flush is finished (both files visible,
// its metadata recorded), rows written and not flushed are dropped, and the writer goes on.
func TestRecover(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultWriterOptions()
	opts.Name = "serve"
	w, err := l.NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	h1 := time.Date(2026, 11, 22, 13, 5, 0, 0, time.UTC)
	h2 := h1.Add(24 * time.Hour)
	write := func(rows ...row) {
		t.Helper()
		rec := buildRecord(t, rows)
		defer rec.Release()
		if err := w.Write(ctx, DBLogs, "t", rec); err != nil {
			t.Fatal(err)
		}
	}
	write(row{name: ptr("a"), event: h1}, row{name: ptr("b"), event: h2})
	// A file where h2's day directory goes: its rename fails, h1's does not.
	blocked := l.DayDir(DBLogs, "t", h2)
	if err := os.MkdirAll(l.DayDir(DBLogs, "t", h1), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.FlushWith(ctx, map[string]string{"wal": "5"}); err == nil {
		t.Fatal("a flush into a blocked partition succeeded")
	}
	if err := w.Recover(); err == nil {
		t.Error("Recover succeeded while the flush could not be finished")
	}
	if m, _ := l.CommitMeta("serve"); m != nil {
		t.Errorf("commit metadata of an unfinished flush: %v", m)
	}
	if err := os.Remove(blocked); err != nil {
		t.Fatal(err)
	}
	write(row{name: ptr("dropped"), event: h1})
	if err := w.Recover(); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if m, err := l.CommitMeta("serve"); err != nil || m["wal"] != "5" {
		t.Errorf("CommitMeta after Recover = %v, %v; want the failed flush's", m, err)
	}
	if got := readTable(t, l, DBLogs, "t"); len(got) != 2 {
		t.Errorf("after Recover: %d rows visible, want the flush's 2: %v", len(got), got)
	}
	write(row{name: ptr("c"), event: h1})
	if err := w.FlushWith(ctx, map[string]string{"wal": "6"}); err != nil {
		t.Fatal(err)
	}
	if got := readTable(t, l, DBLogs, "t"); len(got) != 3 {
		t.Errorf("after a flush that follows Recover: %d rows, want 3 (the dropped row is not one): %v", len(got), got)
	}
}
