package logtypes_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/schema/schematest"
)

// benchInput returns the records of a log type to benchmark: the public corpus file when it is
// there (real events), else the project's samples.
func benchInput(b *testing.B, lt *logtypes.LogType, corpus string) [][]byte {
	b.Helper()
	if corpus != "" {
		if data, err := os.ReadFile(corpus); err == nil {
			var recs [][]byte
			sc := bufio.NewScanner(bytes.NewReader(data))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				if len(bytes.TrimSpace(sc.Bytes())) > 0 {
					recs = append(recs, append([]byte(nil), sc.Bytes()...))
				}
			}
			return recs
		}
	}
	var recs [][]byte
	files, _ := filepath.Glob(filepath.Join(samples, lt.Table.Table+".*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		var env []string
		if lt.Envelope != "" {
			env = []string{lt.Envelope}
		}
		r, err := schematest.Records(data, env)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, r...)
	}
	return recs
}

// BenchmarkParse measures each parser family on a log type of the family: records parsed into
// a builder, rows built into Arrow batches, as ingest does (one core). The figures are events/s
// and MB/s of input.
//
//	go test -run '^$' -bench BenchmarkParse -benchtime 2s ./ingest/logtypes/
func BenchmarkParse(b *testing.B) {
	const corpora = "../../../../shared/corpora/"
	for _, c := range []struct{ family, logType, corpus string }{
		{"json-cloudtrail", "AWS.CloudTrail", corpora + "cloudtrail/otrf-ec2_proxy_s3_exfiltration.jsonl"},
		{"json-okta", "Okta.SystemLog", ""},
		{"fastmatch-nginx", "Nginx.Access", ""},
		{"regex-alb", "AWS.ALB", ""},
		{"csv-vpcflow", "AWS.VPCFlow", ""},
		{"syslog-rfc3164", "Syslog.RFC3164", corpora + "syslog/loghub-OpenSSH_2k.log"},
		{"syslog-rfc5424", "Syslog.RFC5424", ""},
		{"auditd", "Linux.Auditd", corpora + "auditd/golibaudit-audit-rhel7.log"},
	} {
		b.Run(c.family, func(b *testing.B) {
			reg, err := logtypes.Builtin()
			if err != nil {
				b.Fatal(err)
			}
			lt, err := reg.Lookup(c.logType)
			if err != nil {
				b.Fatal(err)
			}
			recs := benchInput(b, lt, c.corpus)
			p, err := lt.NewParser()
			if err != nil {
				b.Fatal(err)
			}
			// Keep the records the parser accepts (the header of a VPC flow file, auditd lines of
			// record types an older kernel wrote that the corpus mixes in...).
			bl := batch.NewBuilder(lt.Table, batch.NewRowIDs())
			var ok [][]byte
			size := 0
			for _, r := range recs {
				bl.Begin()
				if err := p.Parse(r, bl); err == nil {
					ok = append(ok, r)
					size += len(r)
				}
				bl.Rollback()
			}
			if len(ok) == 0 {
				b.Fatalf("no record of %d parses", len(recs))
			}
			b.SetBytes(int64(size) / int64(len(ok)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				r := ok[n%len(ok)]
				bl.Begin()
				if err := p.Parse(r, bl); err != nil {
					b.Fatal(err)
				}
				bl.End()
				if n++; n%8192 == 0 {
					bl.Build().Release()
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
