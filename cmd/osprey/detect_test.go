package main

import (
	"testing"
	"time"

	"github.com/ospreyhq/osprey/detections"
)

// groupAlerts groups as the alert store does: a window fixed from an alert's first match, per
// dedup string, raised at Threshold matches.
func TestGroupAlerts(t *testing.T) {
	r := &detections.Rule{Detection: detections.Detection{RuleID: "R", DisplayName: "Rule R", Severity: detections.SeverityLow, DedupPeriodMinutes: 60, Threshold: 2}}
	t0 := time.Date(2024, 5, 2, 10, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	ms := []match{
		{time: at(59), dedup: "a"},
		{time: at(0), dedup: "a", title: "first a"},
		{time: at(60), dedup: "a"}, // the window of the first is [0, 60): a new group
		{time: at(70), dedup: "a"},
		{time: at(5)}, // default dedup, alone: under the threshold
		{time: at(1), dedup: "b", severity: "critical"},
		{time: at(2), dedup: "b"},
	}
	got := groupAlerts(r, ms)
	want := []simAlert{
		{Dedup: "a", Title: "first a", Severity: "Low", Count: 2, FirstTime: at(0), LastTime: at(59)},
		{Dedup: "b", Title: "Rule R", Severity: "Critical", Count: 2, FirstTime: at(1), LastTime: at(2)},
		{Dedup: "a", Title: "Rule R", Severity: "Low", Count: 2, FirstTime: at(60), LastTime: at(70)},
	}
	if len(got) != len(want) {
		t.Fatalf("%d alerts, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if *got[i] != want[i] {
			t.Errorf("alert %d = %+v, want %+v", i, *got[i], want[i])
		}
	}
}
