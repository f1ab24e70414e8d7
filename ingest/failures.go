package ingest

import (
	_ "embed"
	"fmt"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// TableFailures is the panther_monitor table of records that no log type accepted.
const TableFailures = "classification_failures"

//go:embed monitor/classification_failure.yml
var failureYAML []byte

// FailureSchema returns the table schema of panther_monitor.classification_failures.
func FailureSchema() (*batch.Schema, error) {
	s, err := logschema.Parse(failureYAML, "classification_failure.yml")
	if err != nil {
		return nil, fmt.Errorf("BUG: failure schema: %w", err)
	}
	return batch.Compile(s)
}

// failureColumns are the columns of a failure builder, in schema order.
type failureColumns struct {
	source, errText, raw *batch.StringCol
	line, rawSize        *batch.IntCol
	logTypes             *batch.ListCol
	truncated            *batch.BoolCol
}

func failureCols(b *batch.Builder) failureColumns {
	f := b.Root.Fields
	return failureColumns{
		source:    f[0].(*batch.StringCol),
		line:      f[1].(*batch.IntCol),
		logTypes:  f[2].(*batch.ListCol),
		errText:   f[3].(*batch.StringCol),
		raw:       f[4].(*batch.StringCol),
		rawSize:   f[5].(*batch.IntCol),
		truncated: f[6].(*batch.BoolCol),
	}
}

// maxRaw is the most of a failed record kept in raw.
const maxRaw = 1 << 20

// failure records a record that no log type accepted.
func (w *worker) failure(source string, line int64, rec []byte, size int64, reason string, truncated bool) {
	w.failures++
	if len(rec) > maxRaw {
		rec, truncated = rec[:maxRaw], true
	}
	c := w.cur.failCols
	b := w.cur.fails
	w.open = b
	b.Begin()
	c.source.AppendString(source)
	c.line.Append(line)
	elems := c.logTypes.Elem.(*batch.StringCol)
	for _, lt := range w.cur.src.LogTypes {
		elems.AppendString(lt.Name)
	}
	c.logTypes.Close()
	c.errText.AppendString(reason)
	c.raw.Append(rec)
	c.rawSize.Append(size)
	c.truncated.Append(truncated)
	b.End()
	w.open = nil
	if b.Rows() >= 8192 || b.Size() >= 16<<20 {
		w.flushFailures(w.cur)
	}
}

func (w *worker) flushFailures(st *srcState) {
	if st.fails.Rows() == 0 {
		return
	}
	rec := st.fails.Build()
	err := w.in.sink.Write(w.in.ctx, DBMonitor, TableFailures, rec)
	rec.Release()
	if err != nil {
		w.in.fail(fmt.Errorf("write %s.%s: %w", DBMonitor, TableFailures, err))
		return
	}
	st.fails.Recycle()
}
