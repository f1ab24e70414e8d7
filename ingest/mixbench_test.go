package ingest_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
)

// BenchmarkClassifyMixFile ingests $MIXFILE without --log-type among every built-in type, and,
// with $OLD29 set, among the 29 types built in before issue 15.
func BenchmarkClassifyMixFile(b *testing.B) {
	input, err := os.ReadFile(os.Getenv("MIXFILE"))
	if err != nil {
		b.Skip(err)
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	sets := map[string][]*logtypes.LogType{"all": reg.All()}
	old29 := []string{"AWS.ALB", "AWS.CloudTrail", "AWS.GuardDuty", "AWS.S3ServerAccess", "AWS.VPCDns", "AWS.VPCFlow", "Apache.AccessCombined", "Cloudflare.HttpRequest", "Duo.Authentication", "GSuite.Reports", "GitHub.Audit", "GitLab.Audit", "Linux.Auditd", "Microsoft365.Audit.AzureActiveDirectory", "Nginx.Access", "Okta.SystemLog", "OneLogin.Events", "Osprey.SourceAlarm", "Osquery.Differential", "Panther.Audit", "Rapid7.AuditLog", "Slack.AuditLogs", "Suricata.Anomaly", "Syslog.RFC3164", "Syslog.RFC5424", "Tailscale.Audit", "Gravitational.TeleportAudit", "Zeek.DNS", "Zscaler.ZIA.WebLog"}
	if os.Getenv("OLD29") != "" {
		var lts []*logtypes.LogType
		for _, n := range old29 {
			lt, err := reg.Lookup(n)
			if err != nil {
				b.Fatal(err)
			}
			lts = append(lts, lt)
		}
		sets["old29"] = lts
	}
	for _, name := range []string{"old29", "all"} {
		types, ok := sets[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			events := int64(0)
			b.SetBytes(int64(len(input)))
			for b.Loop() {
				in, err := ingest.New(context.Background(), discard{}, ingest.Options{LogTypes: types, Workers: 1})
				if err != nil {
					b.Fatal(err)
				}
				if err := in.Ingest(context.Background(), "bench", bytes.NewReader(input)); err != nil {
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
