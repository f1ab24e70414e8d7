package batch_test

import (
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
)

// TestPantherAudit builds rows of the built-in Panther.Audit table through its parser, the way
// ingest does (Begin, Parse, then End or Rollback), and checks the table's standard columns and
// the indicators found in nested fields, arrays and json keys.
func TestPantherAudit(t *testing.T) {
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	lt, err := reg.Lookup("Panther.Audit")
	if err != nil {
		t.Fatal(err)
	}
	s := lt.Table
	if s.Table != "panther_audit" || s.LogType != "Panther.Audit" {
		t.Errorf("table %q of log type %q", s.Table, s.LogType)
	}
	var names []string
	for _, f := range s.Arrow.Fields()[len(s.Fields):] {
		names = append(names, f.Name)
	}
	want := []string{
		batch.FieldLogType, batch.FieldRowID, batch.FieldEventTime, batch.FieldParseTime, batch.FieldSourceID, batch.FieldSourceLabel,
		batch.FieldSourceFile, "p_any_ip_addresses", "p_any_emails", "p_any_usernames", "p_any_trace_ids",
	}
	if !slices.Equal(names, want) {
		t.Errorf("columns after the log's fields: %q, want %q", names, want)
	}

	p, err := lt.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	b := batch.NewBuilder(s, batch.NewRowIDs())
	b.SetArena(batch.NewArena(1 << 20))
	b.SetSource(batch.Source{ID: "file-1", Label: "audit.log"})
	parseTime := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	b.SetParseTime(parseTime)
	records := []string{
		`{"actionName":"LOGIN","actionResult":"SUCCEEDED","actor":{"id":"trace-9","type":"USER","name":"homer","attributes":{"email":"homer@springfield.gov"}},` +
			`"sourceIP":"10.1.1.1","XForwardedFor":["10.2.2.2","10.1.1.1","10.0.0.9"],"timestamp":"2026-11-22T10:00:00.5Z","pantherVersion":"1.2"}`,
		`{"actionName":"BAD","actionResult":"NOPE","actor":{"id":"x","type":"USER"},"timestamp":"2026-11-22T10:00:00Z","pantherVersion":"1"}`, // not an allowed result
		`{"actionName":"TOKEN","actionResult":"FAILED","actor":{"id":"t2","type":"TOKEN"},"timestamp":"2026-11-21 09:30:00.25","pantherVersion":"1.3"}`,
	}
	wantOK := []bool{true, false, true}
	for i, rec := range records {
		b.Begin()
		err := p.Parse([]byte(rec), b)
		if (err == nil) != wantOK[i] {
			t.Fatalf("record %d: Parse error %v, want ok %v", i, err, wantOK[i])
		}
		if err != nil {
			b.Rollback()
			continue
		}
		b.End()
	}
	rec := b.Build()
	defer rec.Release()
	if rec.NumRows() != 2 {
		t.Fatalf("%d rows, want 2", rec.NumRows())
	}
	col := func(name string) arrow.Array {
		t.Helper()
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			t.Fatalf("no column %s", name)
		}
		return rec.Column(idx[0])
	}
	list := func(name string, i int) []string {
		l := col(name).(*array.List)
		if l.IsNull(i) {
			return nil
		}
		start, end := l.ValueOffsets(i)
		var out []string
		for j := start; j < end; j++ {
			out = append(out, l.ListValues().(*array.String).Value(int(j)))
		}
		return out
	}
	for _, tc := range []struct {
		col  string
		row  int
		want []string
	}{
		{"p_any_ip_addresses", 0, []string{"10.0.0.9", "10.1.1.1", "10.2.2.2"}},
		{"p_any_emails", 0, []string{"homer@springfield.gov"}},
		{"p_any_usernames", 0, []string{"homer"}},
		{"p_any_trace_ids", 0, []string{"trace-9"}},
		{"p_any_ip_addresses", 1, nil},
		{"p_any_emails", 1, nil},
		{"p_any_usernames", 1, nil},
		{"p_any_trace_ids", 1, []string{"t2"}},
	} {
		if got := list(tc.col, tc.row); !slices.Equal(got, tc.want) {
			t.Errorf("row %d %s = %q, want %q", tc.row, tc.col, got, tc.want)
		}
	}
	events := col(batch.FieldEventTime).(*array.Timestamp)
	for i, want := range []time.Time{
		time.Date(2026, 11, 22, 10, 0, 0, 500_000_000, time.UTC),
		time.Date(2026, 11, 21, 9, 30, 0, 250_000_000, time.UTC),
	} {
		if got := events.Value(i).ToTime(arrow.Microsecond); !got.Equal(want) {
			t.Errorf("row %d p_event_time = %v, want %v", i, got, want)
		}
	}
	actionNames := col("actionName").(*array.String)
	for i, c := range []struct{ col, want string }{
		{batch.FieldLogType, "Panther.Audit"}, {batch.FieldSourceID, "file-1"}, {batch.FieldSourceLabel, "audit.log"},
	} {
		a := col(c.col).(*array.String)
		for j := range 2 {
			if a.Value(j) != c.want {
				t.Errorf("%d: row %d %s = %q, want %q", i, j, c.col, a.Value(j), c.want)
			}
		}
	}
	if actionNames.Value(0) != "LOGIN" || actionNames.Value(1) != "TOKEN" {
		t.Errorf("actionName = %q, %q; want LOGIN, TOKEN (the rolled-back row left nothing)", actionNames.Value(0), actionNames.Value(1))
	}
	ids := col(batch.FieldRowID).(*array.String)
	if a, c := ids.Value(0), ids.Value(1); len(a) != 32 || len(c) != 32 || a == c || a[:16] != c[:16] {
		t.Errorf("p_row_id = %q, %q", a, c)
	}
}
