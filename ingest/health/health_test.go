package health

import (
	"errors"
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
