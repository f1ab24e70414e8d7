package health

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestSource(t *testing.T) {
	var s Source
	t0 := time.Unix(1000, 0)
	if snap := s.Snapshot(t0); !snap.Healthy || snap.Lag != 0 || !snap.LastSuccess.IsZero() {
		t.Errorf("new: %+v", snap)
	}
	s.Pending("a", t0.Add(-30*time.Second))
	s.Pending("b", t0.Add(-10*time.Second))
	s.Pending("a", t0) // received again: the first time counts
	s.Error(t0, errors.New("boom"))
	snap := s.Snapshot(t0)
	if snap.Healthy || snap.Error != "boom" || snap.Lag != 30 || snap.Errors != 1 {
		t.Errorf("after an error: %+v", snap)
	}
	s.Done("a")
	s.Success(t0.Add(time.Second), 2, 100)
	snap = s.Snapshot(t0.Add(time.Second))
	if !snap.Healthy || snap.Lag != 11 || snap.Objects != 2 || snap.Records != 100 || snap.Error != "boom" {
		t.Errorf("after a success: %+v", snap)
	}
}

func TestReportRoundTrip(t *testing.T) {
	path := t.TempDir() + "/health.json"
	if r, err := ReadReport(path); r != nil || err != nil {
		t.Fatalf("no report: got %v, %v; want nil, nil", r, err)
	}
	written := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	want := Report{Written: written, Sources: map[string]Snapshot{"s3": {LastSuccess: written, Healthy: true, Objects: 3, Records: 42}}}
	if err := WriteReport(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := got.Source("s3"); !ok || !got.Written.Equal(written) || s.Records != 42 || !s.Healthy {
		t.Errorf("read back %+v", got)
	}
	if _, ok := got.Source("nope"); ok {
		t.Error("a source the report lacks was found")
	}
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadReport(path); err == nil {
		t.Error("a damaged report was read without an error")
	}
}
