package ingest

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/parse/jsonlog"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// TableSourceErrors is the panther_monitor table of what pull sources gave up on.
const TableSourceErrors = "source_errors"

//go:embed monitor/source_error.yml
var sourceErrorYAML []byte

// SourceError is a row of panther_monitor.source_errors.
type SourceError struct {
	Time      time.Time
	Source    batch.Source
	File      batch.SourceFile // the S3 object, if the error is about one
	Err       string
	Attempts  int
	MessageID string
}

// FlushSink is a sink whose rows become durable and visible on Flush: the lake writer.
type FlushSink interface {
	Sink
	Flush(ctx context.Context) error
}

// SourceErrors records rows of panther_monitor.source_errors, each durable when Record returns.
// They are few (an object that failed every retry), so each is written and flushed on its own;
// compaction merges the files of past hours. It is safe for concurrent use.
type SourceErrors struct {
	mu     sync.Mutex
	w      FlushSink
	b      *batch.Builder
	parser *jsonlog.Parser
}

// NewSourceErrors returns a recorder writing to w.
func NewSourceErrors(w FlushSink) (*SourceErrors, error) {
	s, err := logschema.Parse(sourceErrorYAML, "source_error.yml")
	if err != nil {
		return nil, fmt.Errorf("BUG: source error schema: %w", err)
	}
	table, err := batch.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("BUG: source error schema: %w", err)
	}
	return &SourceErrors{w: w, b: batch.NewBuilder(table, batch.NewRowIDs()), parser: jsonlog.New(table)}, nil
}

// Record writes a row and flushes it.
func (e *SourceErrors) Record(ctx context.Context, se SourceError) error {
	row := map[string]any{
		"time": se.Time.UTC().Format(time.RFC3339Nano), "source": se.Source.ID, "error": se.Err,
		"attempts": se.Attempts,
	}
	if se.File != (batch.SourceFile{}) {
		row["object"] = "s3://" + se.File.Bucket + "/" + se.File.Key
	}
	if se.MessageID != "" {
		row["message_id"] = se.MessageID
	}
	rec, err := json.Marshal(row)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.b.SetSource(se.Source)
	e.b.SetSourceFile(se.File)
	e.b.SetParseTime(time.Now())
	e.b.Begin()
	if err := e.parser.Parse(rec, e.b); err != nil {
		e.b.Rollback()
		return fmt.Errorf("BUG: source error row: %w", err)
	}
	e.b.End()
	batch := e.b.Build()
	defer batch.Release()
	if err := e.w.Write(ctx, DBMonitor, TableSourceErrors, batch); err != nil {
		return fmt.Errorf("write %s.%s: %w", DBMonitor, TableSourceErrors, err)
	}
	return e.w.Flush(ctx)
}
