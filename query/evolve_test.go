package query

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/lake"
)

// ingestCustom writes JSON lines as rows of a custom log schema into the lake.
func ingestCustom(t *testing.T, l *lake.Lake, schema string, lines ...string) error {
	t.Helper()
	ctx := context.Background()
	s, err := logschema.Parse([]byte(schema), "custom.yml")
	if err != nil {
		t.Fatal(err)
	}
	reg := logtypes.New()
	if err := reg.Add(s, false); err != nil {
		t.Fatal(err)
	}
	lt, _ := reg.Lookup(s.Schema)
	w, err := l.NewWriter(lake.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(ctx, w, ingest.Options{LogTypes: []*logtypes.LogType{lt}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Ingest(ctx, "custom.jsonl", strings.NewReader(strings.Join(lines, "\n"))); err != nil {
		t.Fatal(err)
	}
	_, err = in.Close()
	if err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

const schemaV1 = `schema: Custom.MyApp
fields:
  - name: time
    type: timestamp
    timeFormat: rfc3339
    isEventTime: true
  - name: user
    type: object
    fields:
      - name: name
        type: string
  - name: count
    type: bigint
`

// schemaV2 adds a top-level field, a field inside an object and an indicator (a p_any column).
const schemaV2 = `schema: Custom.MyApp
fields:
  - name: time
    type: timestamp
    timeFormat: rfc3339
    isEventTime: true
  - name: action
    type: string
  - name: user
    type: object
    fields:
      - name: name
        type: string
      - name: email
        type: string
        indicators: [email]
  - name: count
    type: bigint
`

// TestSchemaEvolution writes rows of a custom schema, then rows of a version that adds fields,
// and reads both back with DuckDB: the old rows read NULL in the new columns, whole-table views
// and narrowed reads alike. A version that removes or retypes a field is refused.
func TestSchemaEvolution(t *testing.T) {
	ctx := context.Background()
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := ingestCustom(t, l, schemaV1,
		`{"time":"2026-11-20T10:00:00Z","user":{"name":"ana"},"count":1}`,
		`{"time":"2026-11-21T10:00:00Z","user":{"name":"bo"},"count":2}`); err != nil {
		t.Fatal(err)
	}
	if evolved, err := l.TableEvolved(lake.DBLogs, "custom_myapp"); err != nil || evolved {
		t.Fatalf("a new table is evolved: %v %v", evolved, err)
	}
	if err := ingestCustom(t, l, schemaV2,
		`{"time":"2026-11-22T10:00:00Z","action":"login","user":{"name":"cy","email":"cy@example.com"},"count":3}`); err != nil {
		t.Fatal(err)
	}
	if evolved, err := l.TableEvolved(lake.DBLogs, "custom_myapp"); err != nil || !evolved {
		t.Fatalf("after new columns: evolved %v %v", evolved, err)
	}
	db := openDB(t, l, Options{})
	for _, q := range []string{
		"SELECT count, action, user.name, user.email, p_any_emails FROM panther_logs.custom_myapp ORDER BY count",
		// Narrowed to partitions: the reads of old and new files are matched by name too.
		"SELECT count, action, user.name, user.email, p_any_emails FROM panther_logs.custom_myapp WHERE p_event_time >= TIMESTAMPTZ '2026-11-20 00:00:00Z' AND p_event_time < TIMESTAMPTZ '2026-11-23 00:00:00Z' ORDER BY count",
	} {
		rows, err := db.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var got []string
		for rows.Next() {
			var n int64
			var action, name, email *string
			var emails any
			if err := rows.Scan(&n, &action, &name, &email, &emails); err != nil {
				t.Fatal(err)
			}
			got = append(got, strings.Join([]string{str(action), str(name), str(email)}, "/")+"/"+strings.Trim(strings.ReplaceAll(strings.TrimSpace(fmtAny(emails)), " ", ","), "[]"))
		}
		rows.Close()
		if want := "<nil>/ana/<nil>/<nil> <nil>/bo/<nil>/<nil> login/cy/cy@example.com/cy@example.com"; strings.Join(got, " ") != want {
			t.Errorf("%s:\n got %s\nwant %s", q, strings.Join(got, " "), want)
		}
	}
	if !strings.Contains(mustExplain(t, db, "SELECT count FROM panther_logs.custom_myapp WHERE p_event_time > TIMESTAMPTZ '2026-11-21 00:00:00Z'"), "union_by_name") {
		t.Error("a narrowed read of an evolved table does not match columns by name")
	}

	// Going back to the first version removes columns: refused, with the reason, and nothing written.
	err = ingestCustom(t, l, schemaV1, `{"time":"2026-11-22T11:00:00Z","user":{"name":"dee"},"count":4}`)
	if !errors.Is(err, lake.ErrIncompatible) || !strings.Contains(err.Error(), "removes action, user.email, p_any_emails") {
		t.Fatalf("schema v1 after v2: %v", err)
	}
	retyped := strings.Replace(schemaV2, "  - name: count\n    type: bigint", "  - name: count\n    type: string", 1)
	err = ingestCustom(t, l, retyped, `{"time":"2026-11-22T11:00:00Z","count":"5"}`)
	if !errors.Is(err, lake.ErrIncompatible) || !strings.Contains(err.Error(), "changes the type of count (int64 -> utf8)") {
		t.Fatalf("count retyped: %v", err)
	}
	var n int
	db.Refresh(ctx)
	if err := db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM panther_logs.custom_myapp").Scan(&n); err != nil || n != 3 {
		t.Errorf("rows after refused writes: %d, %v", n, err)
	}
}

func str(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func fmtAny(v any) string {
	if v == nil {
		return "<nil>"
	}
	if l, ok := v.([]any); ok {
		var parts []string
		for _, x := range l {
			parts = append(parts, x.(string))
		}
		return strings.Join(parts, ",")
	}
	return "?"
}

func mustExplain(t *testing.T, db *DB, stmt string) string {
	t.Helper()
	out, _, err := db.Explain(context.Background(), stmt)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
