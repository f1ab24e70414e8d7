package query

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestBatchTables(t *testing.T) {
	ctx := context.Background()
	b, err := OpenBatchDB(ctx, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f := func(stmt string, want ...string) {
		t.Helper()
		got, err := b.Tables(ctx, stmt, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: tables %q, want %q", stmt, got, want)
		}
	}
	f("SELECT * FROM panther_logs.Panther_Audit WHERE p_occurs_since('1 day')", "panther_logs.panther_audit")
	f("WITH x AS (SELECT * FROM panther_logs.a) SELECT * FROM x JOIN panther_views.b USING (id) WHERE id IN (SELECT id FROM panther_logs.a)",
		"panther_logs.a", "panther_views.b", "x")
	f("SELECT 1")
}
