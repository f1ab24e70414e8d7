package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/ingest/source/s3src/s3test"
	"github.com/ospreyhq/osprey/internal/awsx"
	"github.com/ospreyhq/osprey/internal/restcattest"
	"github.com/ospreyhq/osprey/lake/objstore"
)

// TestS3LakeReadsOnlyWhatItPlans: a query on a lake of 90 days in S3 reads from the bucket
// only the data files its plan keeps (the GETs are counted by a proxy in front of
// moto_server): for p_occurs_since('1 hour'), the files of that hour's day. A second run reads
// them from the local cache, with no GET. Results are those of the same lake on local disk.
func TestS3LakeReadsOnlyWhatItPlans(t *testing.T) {
	m := s3test.StartMoto(t)
	m.CreateBucket(t, "lake")
	proxy := s3test.NewProxy(t, m.URL)
	for k, v := range proxy.Env() {
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	s3 := []string{"--lake", "s3://lake/osprey", "--state", filepath.Join(dir, "state")}
	local := []string{"--lake", filepath.Join(dir, "local")}

	// An event every 20 minutes for 90 days, up to now.
	now := time.Now().UTC()
	var b strings.Builder
	events := 0
	for ts := now.Add(-90 * 24 * time.Hour); !ts.After(now); ts = ts.Add(20 * time.Minute) {
		fmt.Fprintln(&b, auditEvent(fmt.Sprintf("action-%d", events%7), ts))
		events++
	}
	input := filepath.Join(dir, "audit.jsonl")
	writeFile(t, input, b.String())
	osprey(t, append(s3, "ingest", "--log-type", "Panther.Audit", input)...)
	osprey(t, append(local, "ingest", "--log-type", "Panther.Audit", input)...)

	data := func(path string) bool {
		return strings.HasPrefix(path, "/lake/osprey/panther_logs/panther_audit/year=") && strings.HasSuffix(path, ".parquet")
	}
	hour := "SELECT count(*) AS n FROM panther_logs.panther_audit WHERE p_occurs_since('1 hour')"
	plan := regexp.MustCompile(`(\d+) of (\d+) files planned`).FindStringSubmatch(ospreyStdout(t, append(s3, "sql", "--explain", "-c", hour)...))
	if plan == nil {
		t.Fatal("osprey sql --explain printed no plan")
	}
	planned, _ := strconv.Atoi(plan[1])
	total, _ := strconv.Atoi(plan[2])
	if total < 90 || planned < 1 || planned > 2 {
		t.Fatalf("%d of %d files planned for the last hour, want 1 or 2 (the hour's days) of at least 90", planned, total)
	}
	proxy.Gets(func(string) bool { return true }) // counts from here
	if out := ospreyStdout(t, append(s3, "sql", "--format", "csv", "-c", hour)...); !strings.HasPrefix(out, "n\n") || out == "n\n0\n" {
		t.Errorf("the last hour's events: %q", out)
	}
	gets := proxy.Gets(data)
	if len(gets) != planned {
		t.Errorf("the query fetched %d data files, it planned %d: %v", len(gets), planned, gets)
	}
	for path, n := range gets {
		if n != 1 {
			t.Errorf("%s fetched %d times", path, n)
		}
	}
	osprey(t, append(s3, "sql", "-c", hour)...)
	if gets := proxy.Gets(data); len(gets) != 0 {
		t.Errorf("a second run fetched %v, want everything from the cache", gets)
	}

	// The same results as on local disk, for fixed ranges, all of it and a grouping.
	from := now.Add(-36 * time.Hour).Truncate(time.Hour).Format("2006-01-02 15:04:05")
	for _, q := range []string{
		"SELECT count(*) AS n, min(p_event_time) AS first, max(p_event_time) AS last FROM panther_logs.panther_audit",
		"SELECT actionName, count(*) AS n FROM panther_logs.panther_audit WHERE p_event_time >= TIMESTAMP '" + from + "' GROUP BY 1 ORDER BY 1",
		"SELECT p_log_type, count(*) AS n, max(p_event_time) AS last FROM panther_views.all_logs WHERE p_log_type = 'Panther.Audit' GROUP BY 1",
		"SELECT day, count(*) AS n FROM panther_logs.panther_audit GROUP BY 1 ORDER BY 1",
	} {
		got := ospreyStdout(t, append(s3, "sql", "--format", "csv", "-c", q)...)
		want := ospreyStdout(t, append(local, "sql", "--format", "csv", "-c", q)...)
		if got != want {
			t.Errorf("%s\nS3 lake:\n%s\nlocal lake:\n%s", q, got, want)
		}
	}
	if got := ospreyStdout(t, append(s3, "sql", "--format", "csv", "-c", "SELECT count(*) AS n FROM panther_logs.panther_audit")...); got != fmt.Sprintf("n\n%d\n", events) {
		t.Errorf("count %q, want %d", got, events)
	}
}

// TestS3LakeRESTCatalog: the commands take an Iceberg REST catalog by its URI (--catalog
// http://...): ingest commits through it, a query plans from it, on another machine too.
// The server is internal/restcattest, the REST protocol over iceberg-go's SQL catalog: no
// open-source REST catalog server can be installed here.
func TestS3LakeRESTCatalog(t *testing.T) {
	m := s3test.StartMoto(t)
	m.CreateBucket(t, "lake")
	m.SetEnv(t)
	// The server writes the tables' metadata into the bucket from this process.
	if _, err := objstore.Open(t.Context(), "s3://lake/osprey", awsx.AWS{}); err != nil {
		t.Fatal(err)
	}
	srv := restcattest.Start(t, "s3://lake/osprey")
	dir := t.TempDir()
	samples, err := filepath.Abs(filepath.Join("..", "..", "testdata", "samples", "panther_audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lakeArgs := func(state string) []string {
		return []string{"--lake", "s3://lake/osprey", "--state", filepath.Join(dir, state), "--catalog", srv.URI}
	}
	osprey(t, append(lakeArgs("writer"), "ingest", "-q", "--log-type", "Panther.Audit", samples)...)
	for _, state := range []string{"writer", "reader"} {
		got := ospreyStdout(t, append(lakeArgs(state), "sql", "--format", "csv", "-c", "SELECT count(*) AS n FROM panther_logs.panther_audit")...)
		if got != "n\n20\n" {
			t.Errorf("from the %s's directory: %q, want the 20 events", state, got)
		}
	}
	if ok, err := srv.Catalog.CheckTableExists(t.Context(), []string{"panther_logs", "panther_audit"}); err != nil || !ok {
		t.Errorf("the REST catalog's own catalog has no panther_logs.panther_audit: %v %v", ok, err)
	}
}
