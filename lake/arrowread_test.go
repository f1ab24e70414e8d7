package lake

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// TestArrowReadsChunks reads a written file with arrow-go's Parquet reader, a third
// implementation (after parquet-go's and DuckDB's), and compares every column with the record
// that was written.
func TestArrowReadsChunks(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := randomRecord(t, rand.New(rand.NewPCG(7, 8)), 30000, time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC), 100*time.Millisecond)
	defer rec.Release()
	if err := w.Write(context.Background(), DBLogs, "nested", rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := l.Files(t.Context(), DBLogs, "nested")
	if len(files) != 1 {
		t.Fatalf("%d files", len(files))
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, parquet.NewReaderProperties(memory.DefaultAllocator),
		pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != rec.NumRows() || int(tbl.NumCols()) != int(rec.NumCols()) {
		t.Fatalf("read %d rows of %d columns, wrote %d of %d", tbl.NumRows(), tbl.NumCols(), rec.NumRows(), rec.NumCols())
	}
	for i := range int(rec.NumCols()) {
		got, err := array.Concatenate(tbl.Column(i).Data().Chunks(), memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		// Values, not types: Parquet names list elements "element" where Arrow says "item".
		if g, w := fmt.Sprint(got), fmt.Sprint(rec.Column(i)); g != w {
			t.Errorf("column %s differs:\n got %.300s\nwant %.300s", rec.ColumnName(i), g, w)
		}
		got.Release()
	}
}
