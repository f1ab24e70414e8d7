package serve

import (
	"fmt"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/config"
)

func TestDropOff(t *testing.T) {
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	hour := config.Duration(time.Hour)
	off := config.Duration(0)
	sources := map[string]config.Source{
		"fb":    {ID: "fb", Label: "Fluent Bit", LogTypes: []string{"Linux.Auditd"}, DropOffAlarm: &hour},
		"audit": {ID: "audit", Label: "audit", LogTypes: []string{"Panther.Audit"}}, // off by default
		"quiet": {ID: "quiet", Label: "quiet", LogTypes: []string{"Linux.Auditd"}, DropOffAlarm: &off},
		"new":   {ID: "new", Label: "new", LogTypes: []string{"Linux.Auditd"}}, // 24 h
	}
	d := &dropOff{start: start, silent: map[string]bool{}}
	seen := map[string]time.Time{"fb": start.Add(10 * time.Minute)}
	states := func(alarms []sourceAlarm) (s []string) {
		for _, a := range alarms {
			s = append(s, a.SourceID+" "+a.State)
		}
		return s
	}
	f := func(at time.Duration, want ...string) {
		t.Helper()
		got := states(d.check(start.Add(at), sources, seen))
		if len(got) != len(want) || (len(got) > 0 && fmt.Sprint(got) != fmt.Sprint(want)) {
			t.Errorf("at %s: %v, want %v", at, got, want)
		}
	}
	f(time.Hour)                   // fb's last event was 50 minutes ago
	f(70*time.Minute, "fb silent") // an hour since
	f(2 * time.Hour)               // once per silence
	seen["fb"] = start.Add(3 * time.Hour)
	f(3*time.Hour+time.Minute, "fb recovered")
	f(25*time.Hour, "fb silent", "new silent") // new never had an event: counted from the start
	a := d.check(start.Add(49*time.Hour), sources, map[string]time.Time{"new": start.Add(48 * time.Hour)})
	if len(a) != 1 || a[0].SourceID != "new" || a[0].State != "recovered" || a[0].LastEventTime == "" {
		t.Errorf("recovery of new: %+v", a)
	}
}
