package jsonlog_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/parse/jsonlog"
	"github.com/ospreyhq/osprey/lake"
)

// BenchmarkParseAndWrite measures parsing Panther.Audit events and writing them to Parquet, in
// row groups of several sizes.
func BenchmarkParseAndWrite(b *testing.B) {
	for _, size := range []int{1024, 4096, 16384, 65536} {
		b.Run(fmt.Sprint(size), func(b *testing.B) { benchParseAndWrite(b, size) })
	}
}

func benchParseAndWrite(b *testing.B, batchRows int) {
	s := auditSchema(b)
	rec := []byte(`{"actionName":"UPDATE_USER","actionDescription":"Updates the information for a user","actionResult":"SUCCEEDED","actionParams":{"dynamic":{"input":{"email":"marge.4@springfield.gov","role":{"kind":"ID","value":"(redacted)"},"id":"1000148"}},"static":{}},"actor":{"id":"PantherSSO_homer.3@springfield.gov","type":"USER","name":"homer.3@springfield.gov","attributes":{"email":"homer.3@springfield.gov","emailVerified":true,"roleId":"af870fd0-0a3b-4a64-8bfb-98a33c862be8"}},"sourceIP":"187.12.30.233","XForwardedFor":["187.12.30.233","10.40.0.173"],"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","timestamp":"2026-11-15T12:50:32.055967336Z","pantherVersion":"1.110.14"}`)
	l, err := lake.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	w, err := l.NewWriter(lake.DefaultWriterOptions())
	if err != nil {
		b.Fatal(err)
	}
	p := jsonlog.New(s)
	bl := batch.NewBuilder(s, batch.NewRowIDs())
	b.SetBytes(int64(len(rec)))
	n := 0
	for b.Loop() {
		bl.Begin()
		if err := p.Parse(rec, bl); err != nil {
			b.Fatal(err)
		}
		bl.End()
		if n++; n%batchRows == 0 {
			r := bl.Build()
			if err := w.Write(context.Background(), lake.DBLogs, s.Table, r); err != nil {
				b.Fatal(err)
			}
			r.Release()
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
