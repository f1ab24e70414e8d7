package ingest_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/schema/schematest"
)

// discard is a Sink that drops batches.
type discard struct{}

func (discard) Write(ctx context.Context, db, table string, rec arrow.RecordBatch) error { return nil }

// sampleLines returns the sample records of the built-in log types (nginx's, which Apache's
// type also takes, left out), each as one line, and the log type of each.
func sampleLines(b *testing.B) ([][]byte, []string) {
	b.Helper()
	reg, err := logtypes.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	var recs [][]byte
	var types []string
	for _, lt := range reg.All() {
		if lt.Name == "Nginx.Access" || lt.Name == "AWS.VPCFlow" {
			continue // nginx's lines are Apache's too; a VPC flow header is not a record
		}
		files, _ := filepath.Glob(filepath.Join("..", "testdata", "samples", lt.Table.Table+".*"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			r, err := schematest.Records(data, []string{"Records"})
			if err != nil {
				b.Fatal(err)
			}
			for _, x := range r {
				recs = append(recs, bytes.ReplaceAll(x, []byte("\n"), []byte(" ")))
				types = append(types, lt.Name)
			}
		}
	}
	return recs, types
}

// mixTypes are the log types of the mixed stream of ten types: common ones, JSON and text.
var mixTypes = []string{"AWS.CloudTrail", "AWS.GuardDuty", "Okta.SystemLog", "GitHub.Audit", "GSuite.Reports",
	"Duo.Authentication", "Cloudflare.HttpRequest", "Linux.Auditd", "Syslog.RFC5424", "Apache.AccessCombined"}

// builtin29 are the 29 log types built in before Panther's whole library was (issue 15).
var builtin29 = []string{"AWS.ALB", "AWS.CloudTrail", "AWS.GuardDuty", "AWS.S3ServerAccess", "AWS.VPCDns",
	"AWS.VPCFlow", "Apache.AccessCombined", "Cloudflare.HttpRequest", "Duo.Authentication", "GSuite.Reports",
	"GitHub.Audit", "GitLab.Audit", "Linux.Auditd", "Microsoft365.Audit.AzureActiveDirectory", "Nginx.Access",
	"Okta.SystemLog", "OneLogin.Events", "Osprey.SourceAlarm", "Osquery.Differential", "Panther.Audit",
	"Rapid7.AuditLog", "Slack.AuditLogs", "Suricata.Anomaly", "Syslog.RFC3164", "Syslog.RFC5424",
	"Tailscale.Audit", "Gravitational.TeleportAudit", "Zeek.DNS", "Zscaler.ZIA.WebLog"}

// BenchmarkClassify measures ingest without --log-type: records classified among every built-in
// log type, in a stream of one log type (the last winner is tried first) and in streams that
// mix types (all the samples; ten common types interleaved, among the 29 types built in before
// and among all), against parsing the same stream with its one log type named. The ratio of
// mixed10-among-29 to mixed10-among-all is the cost of the other candidates.
//
//	go test -run '^$' -bench BenchmarkClassify -count 3 ./ingest/
func BenchmarkClassify(b *testing.B) {
	recs, types := sampleLines(b)
	all := logTypes(b)
	var oneType [][]byte
	byType := map[string][][]byte{}
	for i, r := range recs {
		if types[i] == "Okta.SystemLog" {
			oneType = append(oneType, r)
		}
		byType[types[i]] = append(byType[types[i]], r)
	}
	// The ten types' records interleaved: each record of another type than the one before.
	var mix10 [][]byte
	for k := 0; len(mix10) < 200; k++ {
		for _, name := range mixTypes {
			rs := byType[name]
			mix10 = append(mix10, rs[k%len(rs)])
		}
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	var among29 []*logtypes.LogType
	for _, name := range builtin29 {
		lt, err := reg.Lookup(name)
		if err != nil {
			b.Fatal(err)
		}
		among29 = append(among29, lt)
	}
	repeat := func(rs [][]byte, n int) []byte {
		var buf bytes.Buffer
		for len(buf.Bytes()) < n {
			for _, r := range rs {
				buf.Write(r)
				buf.WriteByte('\n')
			}
		}
		return buf.Bytes()
	}
	const size = 4 << 20
	for _, c := range []struct {
		name  string
		types []*logtypes.LogType
		input []byte
	}{
		{"okta-named", logTypes(b, "Okta.SystemLog"), repeat(oneType, size)},
		{"okta-among-all", all, repeat(oneType, size)},
		{"mixed-among-all", all, repeat(recs, size)},
		{"mixed10-among-29", among29, repeat(mix10, size)},
		{"mixed10-among-all", all, repeat(mix10, size)},
	} {
		b.Run(c.name, func(b *testing.B) {
			events := int64(0)
			b.SetBytes(int64(len(c.input)))
			for b.Loop() {
				in, err := ingest.New(context.Background(), discard{}, ingest.Options{LogTypes: c.types, Workers: 1})
				if err != nil {
					b.Fatal(err)
				}
				if err := in.Ingest(context.Background(), "bench", bytes.NewReader(c.input)); err != nil {
					b.Fatal(err)
				}
				s, err := in.Close()
				if err != nil {
					b.Fatal(err)
				}
				if s.Failures > 0 {
					b.Fatalf("%d failures", s.Failures)
				}
				events += s.Total()
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
