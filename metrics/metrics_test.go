package metrics

import (
	"strings"
	"testing"
)

func TestWriteText(t *testing.T) {
	var r Registry
	events := r.Counter("osprey_events_total", "Events written, by source and log type.", "source", "log_type")
	backlog := r.Gauge("osprey_backlog_bytes", "Bytes accepted and not yet parsed.")
	r.GaugeFunc("osprey_wal_bytes", "Bytes in the write-ahead log.", func() float64 { return 4096 })
	events.Add(3, "http-b", "Panther.Audit")
	events.Add(2, "http-a", "Linux.Auditd")
	events.Add(1, "http-a", "Linux.Auditd")
	events.Add(1, `we"ird`+"\n\x01", "X")
	backlog.Set(12.5)
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP osprey_events_total Events written, by source and log type.
# TYPE osprey_events_total counter
osprey_events_total{source="http-a",log_type="Linux.Auditd"} 3
osprey_events_total{source="http-b",log_type="Panther.Audit"} 3
osprey_events_total{source="we\"ird\n",log_type="X"} 1
# HELP osprey_backlog_bytes Bytes accepted and not yet parsed.
# TYPE osprey_backlog_bytes gauge
osprey_backlog_bytes 12.5
# HELP osprey_wal_bytes Bytes in the write-ahead log.
# TYPE osprey_wal_bytes gauge
osprey_wal_bytes 4096
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if events.Value("http-a", "Linux.Auditd") != 3 {
		t.Error("Value")
	}
	defer func() {
		if recover() == nil {
			t.Error("a family registered twice did not panic")
		}
	}()
	r.Gauge("osprey_backlog_bytes", "again")
}
