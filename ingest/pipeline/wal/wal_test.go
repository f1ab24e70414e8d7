package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"

	"github.com/ospreyhq/osprey/internal/disktest"
)

// entry returns the i-th test entry; one in four has a trailer (an S3 object, a cursor, or both).
func entry(i int) Entry {
	e := Entry{Source: fmt.Sprint("src", i%3), Records: [][]byte{[]byte(fmt.Sprint("record ", i)), {}, []byte(fmt.Sprint(i))}}
	switch i % 8 {
	case 1:
		e.Bucket, e.Key = "bucket", fmt.Sprint("key ", i)
	case 5:
		e.Cursor = fmt.Sprint(`{"from":`, i, `}`)
		if i%16 == 5 {
			e.Bucket, e.Key = "b", fmt.Sprint("k/", i)
		}
	}
	return e
}

// readAll reads the log from seq from until it has n entries.
func readAll(t *testing.T, l *Log, from uint64, n int) map[uint64]Entry {
	t.Helper()
	got := map[uint64]Entry{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := l.Read(ctx, from, func(seq uint64, e Entry) error {
		c := Entry{Source: e.Source, Bucket: e.Bucket, Key: e.Key, Cursor: e.Cursor}
		for _, r := range e.Records {
			c.Records = append(c.Records, append([]byte(nil), r...))
		}
		got[seq] = c
		if len(got) == n {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Read: %v", err)
	}
	return got
}

func same(a, b Entry) bool {
	if a.Source != b.Source || len(a.Records) != len(b.Records) || a.Bucket != b.Bucket || a.Key != b.Key || a.Cursor != b.Cursor {
		return false
	}
	for i := range a.Records {
		if string(a.Records[i]) != string(b.Records[i]) {
			return false
		}
	}
	return true
}

// TestAppendRead appends from many goroutines across segment boundaries while a reader follows,
// then reopens the log: every entry is read once, in sequence order, with its content.
func TestAppendRead(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 200
	ctx := context.Background()
	content := sync.Map{}
	var wg sync.WaitGroup
	readDone := make(chan map[uint64]Entry)
	go func() { readDone <- readAll(t, l, 0, writers*each) }()
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e := entry(w*each + i)
				seq, err := l.Append(ctx, e)
				if err != nil {
					t.Error(err)
					return
				}
				content.Store(seq, e)
			}
		})
	}
	wg.Wait()
	got := <-readDone
	check := func(got map[uint64]Entry) {
		t.Helper()
		if len(got) != writers*each {
			t.Fatalf("read %d entries, want %d", len(got), writers*each)
		}
		for seq := range uint64(writers * each) {
			want, _ := content.Load(seq)
			if !same(got[seq], want.(Entry)) {
				t.Fatalf("entry %d = %+v, want %+v", seq, got[seq], want)
			}
		}
	}
	check(got)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) < 10 {
		t.Errorf("%d segments of 4 KiB for %d bytes", len(segs), l.Size())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, entry(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}

	l, err = Open(dir, Options{SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Next() != writers*each {
		t.Errorf("Next after reopening = %d", l.Next())
	}
	check(readAll(t, l, 0, writers*each))
	// Reading from the middle of a segment starts there.
	if got := readAll(t, l, 777, 3); len(got) != 3 || got[777].Source == "" {
		t.Errorf("read from 777: %v", got)
	}
}

// TestTornTail cuts the last frame short, as a crash during a write would: Open drops it, keeps
// the entries before it, and appends after them.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5 {
		if _, err := l.Append(ctx, entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	info, _ := os.Stat(segs[0])
	for _, cut := range []int64{3, 12} { // inside the data, inside the header
		if err := os.Truncate(segs[0], info.Size()-cut); err != nil {
			t.Fatal(err)
		}
		l, err = Open(dir, Options{})
		if err != nil {
			t.Fatalf("Open after a torn write: %v", err)
		}
		if l.Next() != 4 {
			t.Fatalf("Next = %d, want 4 (the torn fifth entry dropped)", l.Next())
		}
		seq, err := l.Append(ctx, entry(9))
		if err != nil || seq != 4 {
			t.Fatalf("Append = %d, %v", seq, err)
		}
		got := readAll(t, l, 0, 5)
		if !same(got[3], entry(3)) || !same(got[4], entry(9)) {
			t.Errorf("entries after recovery: %v", got)
		}
		l.Close()
		info, _ = os.Stat(segs[0])
	}
}

// TestCorruptSegment damages a frame in a segment that is not the last: that cannot come from a
// crash, and Open refuses the log rather than skip acknowledged entries.
func TestCorruptSegment(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := l.Append(context.Background(), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	b, _ := os.ReadFile(segs[1])
	b[20] ^= 0xff
	os.WriteFile(segs[1], b, 0o644)
	if _, err := Open(dir, Options{SegmentSize: 256}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open of a corrupt log: %v", err)
	}
}

// TestCheckpoint removes the segments whose entries are all before the checkpoint, and keeps
// the rest readable.
func TestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for i := range 60 {
		if _, err := l.Append(ctx, entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	before := l.Size()
	segsBefore, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err := l.Checkpoint(45); err != nil {
		t.Fatal(err)
	}
	segsAfter, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segsAfter) >= len(segsBefore) || l.Size() >= before {
		t.Errorf("checkpoint kept %d of %d segments, %d of %d bytes", len(segsAfter), len(segsBefore), l.Size(), before)
	}
	got := readAll(t, l, 45, 15)
	if !same(got[45], entry(45)) || !same(got[59], entry(59)) {
		t.Errorf("entries after the checkpoint: %v", got)
	}
	// Entries before the checkpoint may be gone; reading them is an error, not a silent skip.
	err = l.Read(ctx, 0, func(uint64, Entry) error { return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("reading removed entries: %v", err)
	}
}

// TestAppendContext checks that an Append whose context ends returns.
func TestAppendContext(t *testing.T) {
	l, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The entry may or may not become durable; Append must not block either way.
	if _, err := l.Append(ctx, entry(1)); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a done context: %v", err)
	}
}

// BenchmarkAppend measures durable appends from 32 goroutines (group commit), entries of 100
// records of 500 bytes, as an HTTP source under load makes them.
func BenchmarkAppend(b *testing.B) {
	l, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	rec := make([]byte, 500)
	e := Entry{Source: "bench"}
	for range 100 {
		e.Records = append(e.Records, rec)
	}
	b.SetBytes(100 * 500)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(context.Background(), e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "records/s")
}

// TestCheckpointTrimsActive checks that a checkpoint past every entry leaves nothing of them on
// disk, even when they fit in one (active) segment, and that the log goes on afterwards.
func TestCheckpointTrimsActive(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{}) // 64 MiB segments: everything below is in the active one
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 10 {
		if _, err := l.Append(ctx, entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	// A checkpoint in the middle keeps the entries after it, and starts a new segment.
	if err := l.Checkpoint(5); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l, 5, 5); !same(got[5], entry(5)) || !same(got[9], entry(9)) {
		t.Errorf("entries after the checkpoint: %v", got)
	}
	if _, err := l.Append(ctx, entry(10)); err != nil {
		t.Fatal(err)
	}
	if err := l.Checkpoint(11); err != nil {
		t.Fatal(err)
	}
	if got := l.Size(); got != 0 {
		t.Errorf("Size after a checkpoint past every entry = %d, want 0", got)
	}
	if got := diskBytes(t, dir); got != 0 {
		t.Errorf("segments hold %d bytes after a checkpoint past every entry, want 0", got)
	}
	for i := 11; i < 13; i++ {
		if _, err := l.Append(ctx, entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, want := l.Next(), uint64(13); got != want {
		t.Errorf("Next after reopening = %d, want %d", got, want)
	}
	if got := readAll(t, l, 11, 2); !same(got[11], entry(11)) || !same(got[12], entry(12)) {
		t.Errorf("entries after reopening: %v", got)
	}
}

// diskBytes returns the bytes of the segment files in dir.
func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, s := range segs {
		info, err := os.Stat(s)
		if err != nil {
			t.Fatal(err)
		}
		n += info.Size()
	}
	return n
}

// TestDiskFull appends to a log on a small tmpfs that a filler file has filled: the appends
// fail and nothing of them is acknowledged; once the filler is gone, appends succeed again,
// with the sequence numbers the failed ones had, and a reopened log holds exactly the
// acknowledged entries.
func TestDiskFull(t *testing.T) {
	dir := disktest.Tmpfs(t, "1m")
	walDir := filepath.Join(dir, "wal")
	l, err := Open(walDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	ctx := context.Background()
	big := Entry{Source: "s", Records: [][]byte{make([]byte, 64<<10)}}
	var acked []uint64
	for i := range 3 {
		seq, err := l.Append(ctx, entry(i))
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, seq)
	}
	filler := disktest.Fill(t, dir, 4096)
	failed := 0
	for range 4 {
		if _, err := l.Append(ctx, big); err == nil {
			t.Fatal("an append of 64 KiB on a full disk succeeded")
		} else if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("append on a full disk: %v, want ENOSPC", err)
		}
		failed++
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < 6; i++ {
		seq, err := l.Append(ctx, entry(i))
		if err != nil {
			t.Fatalf("append after space came back: %v", err)
		}
		if want := uint64(i); seq != want {
			t.Errorf("append after failures got entry %d, want %d", seq, want)
		}
		acked = append(acked, seq)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l, err = Open(walDir, Options{}); err != nil {
		t.Fatal(err)
	}
	if got, want := l.Next(), uint64(len(acked)); got != want {
		t.Fatalf("reopened log ends at %d, want %d (%d appends failed)", got, want, failed)
	}
	got := readAll(t, l, 0, len(acked))
	for i := range acked {
		if !same(got[uint64(i)], entry(i)) {
			t.Errorf("entry %d = %v, want %v", i, got[uint64(i)], entry(i))
		}
	}
}

// TestOpenDamagedLength: a torn last frame whose length field is garbage is cut without a
// buffer of that length being made (found by FuzzSegment: a length of 800 MB was allocated).
func TestOpenDamagedLength(t *testing.T) {
	dir := t.TempDir()
	seg := appendFrame(nil, 0, entry(0))
	seg = append(seg, 0, 0, 0, 0x30, 1, 2, 3, 4, 5) // a length of 768 MiB, then 5 bytes
	path := filepath.Join(dir, "00000000000000000000.wal")
	if err := os.WriteFile(path, seg, 0o644); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	defer l.Close()
	if l.Next() != 1 {
		t.Errorf("Next %d, want 1", l.Next())
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("Open allocated %d MiB for a torn frame", got>>20)
	}
}
