package lake

import (
	"errors"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
)

// WriteFile writes the rows of recs (batches of one schema) as a Parquet file at path, a row
// group per batch, with the
// encodings, types and statistics of the lake's data files: DuckDB reads it exactly as it reads
// a table of the lake. It is meant for files read once and thrown away, such as the batches
// detections bind as tables, so it does not fsync.
func WriteFile(path string, recs ...arrow.RecordBatch) (int64, error) {
	return writeFile(path, recs, nil, false)
}

// WriteScratchFile is WriteFile for a file read once, right away: its pages are neither
// compressed nor dictionary-encoded, which makes it quicker to write and to read, and larger.
func WriteScratchFile(path string, recs ...arrow.RecordBatch) (int64, error) {
	return writeFile(path, recs, nil, true)
}

// WriteScratchRows is WriteScratchFile of some rows only: rows[i] lists the rows of recs[i]
// to write, in order (nil or empty: none of that batch).
func WriteScratchRows(path string, recs []arrow.RecordBatch, rows [][]int32) (int64, error) {
	if len(rows) != len(recs) {
		return 0, fmt.Errorf("write %s: %d row selections for %d batches", path, len(rows), len(recs))
	}
	return writeFile(path, recs, rows, true)
}

func writeFile(path string, recs []arrow.RecordBatch, sel [][]int32, scratch bool) (int64, error) {
	if len(recs) == 0 {
		return 0, errors.New("write file: no batch")
	}
	s := recs[0].Schema()
	var plain map[string]bool
	switch {
	case scratch:
		plain = stringColumns(s)
	case recs[0].NumRows() >= minSampleRows:
		plain = plainColumns(recs[0])
	}
	ps, err := parquetSchema(s, plain)
	if err != nil {
		return 0, err
	}
	template, err := fileTemplate(ps, Signature(s))
	if err != nil {
		return 0, err
	}
	enc, err := newEncoder(s)
	if err != nil {
		return 0, err
	}
	enc.cw.raw = scratch
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	pq, err := createPQFile(f)
	if err != nil {
		return 0, errors.Join(err, f.Close())
	}
	cols := tableColumns(ps)
	for i, rec := range recs {
		var rows []int32
		if sel != nil {
			if rows = sel[i]; len(rows) == 0 {
				continue
			}
		}
		if rec.NumRows() == 0 {
			continue
		}
		if !rec.Schema().Equal(s) {
			f.Close()
			return 0, fmt.Errorf("write %s: batches of different schemas", path)
		}
		rg, err := enc.encode(cols, rec, rows)
		if err == nil {
			err = pq.append(rg)
		}
		if err != nil {
			f.Close()
			return 0, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return pq.finish(template)
}

// stringColumns returns the paths of every string leaf of a schema (as plainColumns names them).
func stringColumns(s *arrow.Schema) map[string]bool {
	out := map[string]bool{}
	var visit func(t arrow.DataType, path string)
	visit = func(t arrow.DataType, path string) {
		switch t := t.(type) {
		case *arrow.StringType:
			out[path] = true
		case *arrow.StructType:
			for _, f := range t.Fields() {
				visit(f.Type, path+"."+f.Name)
			}
		case *arrow.ListType:
			visit(t.Elem(), path+".element")
		}
	}
	for _, f := range s.Fields() {
		visit(f.Type, f.Name)
	}
	return out
}
