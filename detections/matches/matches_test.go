package matches

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

var (
	at   = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	rule = &alert.Rule{ID: "Detection.Deleted", Type: alert.TypeRule, Severity: "High", DedupPeriod: time.Hour, Threshold: 1,
		Tags: []string{"audit"}, Reports: map[string][]string{"MITRE ATT&CK": {"TA0005:T1562"}}}
)

// events returns a batch of n rows of a table: an event time, a string and a JSON column.
func events(n int) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: lake.FieldEventTime, Type: tsType},
		{Name: "actor", Type: arrow.BinaryTypes.String},
		{Name: "params", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: jsonMeta},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.TimestampBuilder).AppendTime(at.Add(time.Duration(i) * time.Second))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("user%d", i))
		b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf(`{"n":%d}`, i))
	}
	return b.NewRecordBatch()
}

// TestRows checks the columns panther_rule_matches and panther_rule_errors add to a table's
// rows, each row rendered by RowJSON (JSON columns as JSON).
func TestRows(t *testing.T) {
	rec := events(2)
	defer rec.Release()
	as := alert.Assignment{AlertID: "a1", Created: at, Updated: at.Add(time.Minute), Severity: "Critical"}
	out := Rows(rec, []Match{{Rule: rule, Alert: as, Context: []byte(`{"who":"user0"}`)}, {Rule: rule, Alert: as}})
	defer out.Release()
	want := []string{
		`{"actor":"user0","p_alert_context":{"who":"user0"},"p_alert_creation_time":"2026-11-22T12:00:00Z","p_alert_id":"a1","p_alert_severity":"Critical","p_alert_update_time":"2026-11-22T12:01:00Z","p_event_time":"2026-11-22T12:00:00Z","p_rule_id":"Detection.Deleted","p_rule_reports":{"MITRE ATT\u0026CK":["TA0005:T1562"]},"p_rule_severity":"High","p_rule_tags":["audit"],"params":{"n":0}}`,
		`{"actor":"user1","p_alert_creation_time":"2026-11-22T12:00:00Z","p_alert_id":"a1","p_alert_severity":"Critical","p_alert_update_time":"2026-11-22T12:01:00Z","p_event_time":"2026-11-22T12:00:01Z","p_rule_id":"Detection.Deleted","p_rule_reports":{"MITRE ATT\u0026CK":["TA0005:T1562"]},"p_rule_severity":"High","p_rule_tags":["audit"],"params":{"n":1}}`,
	}
	for i := range want {
		if got := string(RowJSON(out, i)); got != want[i] {
			t.Errorf("match row %d:\n got %s\nwant %s", i, got, want[i])
		}
	}
	if got, want := out.Schema().NumFields(), 3+len(matchFields); got != want {
		t.Errorf("match rows: %d columns, want %d", got, want)
	}

	failed := ErrorRows(rec, &alert.Rule{ID: "Broken"}, errors.New("Binder Error: no column x"), at)
	defer failed.Release()
	wantErr := `{"actor":"user1","p_event_time":"2026-11-22T12:00:01Z","p_rule_error":"Binder Error: no column x","p_rule_error_time":"2026-11-22T12:00:00Z","p_rule_id":"Broken","p_rule_severity":"","p_rule_tags":[],"params":{"n":1}}`
	if got := string(RowJSON(failed, 1)); got != wantErr {
		t.Errorf("error row:\n got %s\nwant %s", got, wantErr)
	}
}

// TestEpochs checks that matches counted in a lane are counted once when the process dies
// around the flush that commits them: the epoch is settled from the lake's commit metadata
// (CommittedEpoch) when the store is opened again.
func TestEpochs(t *testing.T) {
	ctx := context.Background()
	const lane = "sched-w"
	add := func(t *testing.T, s *alert.Store, n int) {
		t.Helper()
		ms := make([]alert.Match, n)
		for i := range ms {
			ms[i] = alert.Match{EventTime: at}
		}
		if _, _, err := s.AddTo(lane, rule, ms, false); err != nil {
			t.Fatal(err)
		}
	}
	open := func(t *testing.T, l *lake.Lake) (*alert.Store, *lake.Writer) {
		t.Helper()
		s, err := alert.Open(filepath.Join(l.Dir(), "_osprey", "alerts"), CommittedEpoch(l))
		if err != nil {
			t.Fatal(err)
		}
		w, err := l.NewWriter(lake.WriterOptions{Name: lane})
		if err != nil {
			t.Fatal(err)
		}
		return s, w
	}
	for _, flushed := range []bool{false, true} {
		t.Run(fmt.Sprintf("flushed=%v", flushed), func(t *testing.T) {
			l, err := lake.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			s, w := open(t, l)
			add(t, s, 2)
			meta, err := PrepareAlertsLane(ctx, s, w, lane, lane)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.FlushWith(ctx, meta); err != nil {
				t.Fatal(err)
			}
			if err := CommitAlerts(s, meta); err != nil {
				t.Fatal(err)
			}
			// Three more; the process dies after PrepareAlertsLane, before (or after) the
			// flush commits, and before CommitAlerts.
			add(t, s, 3)
			meta, err = PrepareAlertsLane(ctx, s, w, lane, lane)
			if err != nil {
				t.Fatal(err)
			}
			if flushed {
				if err := w.FlushWith(ctx, meta); err != nil {
					t.Fatal(err)
				}
			}
			w.Abort()
			s.Close()

			s, w = open(t, l)
			defer s.Close()
			defer w.Close()
			epoch, err := CommittedEpoch(l)(lane)
			if err != nil {
				t.Fatal(err)
			}
			want, wantEpoch, wantHistory := int64(2), meta[MetaEpoch], int64(1)
			if flushed {
				want, wantHistory = 5, 2
			} else {
				wantEpoch = "1"
			}
			if got := fmt.Sprint(epoch); got != wantEpoch {
				t.Errorf("committed epoch %s, want %s", got, wantEpoch)
			}
			if a := s.Alerts(); len(a) != 1 || a[0].Events != want {
				t.Fatalf("after the crash: %+v, want one alert of %d events", a, want)
			}
			if n := count(t, l, "SELECT count(*) FROM panther_monitor.alert_history"); n != wantHistory {
				t.Errorf("%d rows of alert history, want %d", n, wantHistory)
			}
		})
	}
}

// TestAbort checks that the matches of an epoch whose flush failed are dropped, and that the
// lane can prepare again.
func TestAbort(t *testing.T) {
	ctx := context.Background()
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := alert.Open(filepath.Join(l.Dir(), "_osprey", "alerts"), CommittedEpoch(l))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := l.NewWriter(lake.WriterOptions{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i, commit := range []bool{false, true} {
		if _, _, err := s.Add(rule, []alert.Match{{EventTime: at}}, false); err != nil {
			t.Fatal(err)
		}
		meta, err := PrepareAlerts(ctx, s, w, "test")
		if err != nil {
			t.Fatalf("prepare %d: %v", i, err)
		}
		settle := AbortAlerts
		if commit {
			settle = CommitAlerts
		}
		if err := settle(s, meta); err != nil {
			t.Fatal(err)
		}
	}
	if a := s.Alerts(); len(a) != 1 || a[0].Events != 1 {
		t.Errorf("after an abort and a commit: %+v, want one alert of the committed event", a)
	}
	if err := CommitAlerts(s, map[string]string{}); err == nil {
		t.Error("CommitAlerts of metadata without an epoch: no error")
	}
}

// count runs a counting query over the lake.
func count(t *testing.T, l *lake.Lake, stmt string) int64 {
	t.Helper()
	db, err := query.Open(context.Background(), l, query.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(context.Background(), stmt)
	if err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	defer rows.Close()
	var n int64
	if !rows.Next() {
		t.Fatalf("%s: no row", stmt)
	}
	if err := rows.Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
