package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/ingest/pipeline"
	"github.com/ospreyhq/osprey/ingest/pipeline/wal"
	"github.com/ospreyhq/osprey/ingest/source/s3src/s3test"
	"github.com/ospreyhq/osprey/internal/pgtest"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/lake/iceberg"
)

// TestSharedS3Lake: two machines run osprey serve on one lake in S3 (moto_server) through one
// PostgreSQL catalog, each with its own state directory, while a third ingests a file and
// osprey lake compact --older-than 0s merges the files they all commit, over and over. One
// serve is killed with SIGKILL in the middle of its stream and started again on its state
// directory. Once both have stopped, the lake holds every event whose POST was acknowledged
// exactly once, every event whose POST failed at most once (it may have been made durable
// before the kill), every ingested event once, and nothing else; osprey lake status counts the
// same rows; and each serve's commit record in the catalog is its own write-ahead log's end.
func TestSharedS3Lake(t *testing.T) {
	if testing.Short() {
		t.Skip("runs moto_server, PostgreSQL and several osprey processes")
	}
	m := s3test.StartMoto(t)
	m.CreateBucket(t, "shared")
	m.SetEnv(t)
	dsn := pgtest.Start(t).NewDatabase(t)
	dir := t.TempDir()
	// machine is the lake as one machine sees it: the shared bucket and catalog, and a
	// state directory of its own.
	machine := func(name string) testLake {
		state := filepath.Join(dir, name)
		return testLake{
			args:   []string{"--lake", "s3://shared/lake", "--state", state, "--catalog", dsn},
			config: fmt.Sprintf("lake: s3://shared/lake\nstate: %s\ncatalog: {type: postgres, dsn: %q}", state, dsn),
			opts:   lake.Options{Dir: state, Location: "s3://shared/lake", Catalog: iceberg.Postgres, CatalogDSN: dsn},
		}
	}
	a, b, c, reader := machine("a"), machine("b"), machine("c"), machine("reader")
	serveConfig := func(lk testLake) string {
		path := filepath.Join(dir, filepath.Base(lk.opts.Dir)+".yml")
		// Frequent flushes: the two serves commit to the same table all the time.
		writeFile(t, path, lk.config+`
flush: {age: 100ms}
sources:
  - id: audit
    type: http
    logTypes: [Panther.Audit]
`)
		return path
	}
	cfgA, cfgB := serveConfig(a), serveConfig(b)

	// Events of a day that is over, so that compaction merges their hours and the day.
	base := time.Now().UTC().Truncate(24 * time.Hour).Add(-72 * time.Hour)
	eventAt := func(n int) time.Time { return base.Add(time.Duration(n%20000) * 4 * time.Second) }
	const ingested = 2000
	var file strings.Builder
	for n := range ingested {
		file.WriteString(auditEvent(fmt.Sprint("i-", n), eventAt(3*n)) + "\n")
	}
	input := filepath.Join(dir, "ingest.jsonl")
	writeFile(t, input, file.String())

	var (
		mu       sync.Mutex
		acked    = map[string]bool{} // ids whose POST was answered 200
		unacked  = map[string]bool{} // ids whose POST failed: in the lake at most once
		failures []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	const perPost = 10
	// postTo posts the next perPost events of a serve, ids prefix-N, and records the outcome.
	// It reports whether the server answered at all.
	counters := map[string]*atomic.Int64{"a": {}, "b": {}}
	postTo := func(url, prefix string) (answered, ok bool) {
		n := int(counters[prefix].Add(perPost))
		var body strings.Builder
		ids := make([]string, 0, perPost)
		for i := n - perPost; i < n; i++ {
			id := fmt.Sprintf("%s-%d", prefix, i)
			ids = append(ids, id)
			body.WriteString(auditEvent(id, eventAt(i)) + "\n")
		}
		code, _, err := post(url+"/http/audit", []byte(body.String()), nil)
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if code == 200 && err == nil {
				acked[id] = true
			} else {
				unacked[id] = true
			}
		}
		return err == nil, code == 200 && err == nil
	}

	// Serve a logs its flushes (at debug level): it is killed once one has committed rows, so
	// that its restart goes on from its own record in the catalog, not from the start.
	dA := startDaemon(t, []string{"--log-level", "debug", "serve", "--config", cfgA, "--listen", "127.0.0.1:0"})
	dB := startServeConfig(t, cfgB)
	defer func() { dA.cmd.Process.Kill(); dB.cmd.Process.Kill() }()
	var urlA atomic.Pointer[string]
	urlA.Store(&dA.url)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // releases the posters should the test stop early
	var (
		ackedA    atomic.Int64
		killNow   = make(chan struct{})
		killOnce  sync.Once
		killed    = make(chan struct{}) // closed once serve a is gone
		restarted = make(chan struct{}) // closed once serve a runs again
	)
	const killAfter = 20 // acknowledged posts to serve a before it is killed, at least
	const postsAfter = 20

	// Serve a's posters: until the kill, then after the restart a fixed number more. A post
	// that fails is never made again.
	var posters sync.WaitGroup
	for range 2 {
		posters.Go(func() {
			for i := 0; i < 1000 && !isClosed(killed); i++ {
				answered, ok := postTo(*urlA.Load(), "a")
				if ok && ackedA.Add(1) >= killAfter {
					killOnce.Do(func() { close(killNow) })
				}
				if !answered {
					break
				}
			}
			killOnce.Do(func() { close(killNow) }) // however this stream ended
			select {
			case <-restarted:
			case <-ctx.Done():
				return
			}
			for range postsAfter {
				if _, ok := postTo(*urlA.Load(), "a"); !ok {
					fail("a post to serve a after its restart failed")
				}
			}
		})
	}
	// Serve b's posters: all along, every post acknowledged.
	aDone := make(chan struct{})
	var bPosters sync.WaitGroup
	for range 2 {
		bPosters.Go(func() {
			for i := 0; i < 1000 && !isClosed(aDone); i++ {
				if _, ok := postTo(dB.url, "b"); !ok {
					fail("a post to serve b failed")
				}
			}
		})
	}
	// run runs osprey to its end on the lake as lk sees it: it must succeed and warn of nothing.
	run := func(lk testLake, args ...string) (string, bool) {
		cmd := exec.Command("osprey", lk.with(args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			fail("osprey %s (state %s): %v\n%s%s", strings.Join(args, " "), lk.opts.Dir, err, stdout.String(), stderr.String())
			return "", false
		}
		if warned(stderr.String()) {
			fail("osprey %s (state %s) warned:\n%s", strings.Join(args, " "), lk.opts.Dir, stderr.String())
		}
		return stdout.String(), true
	}
	// A third machine ingests a file; compaction runs again and again, on the state
	// directories of a and b in turn (a's while a is killed and started again), until the
	// others are done.
	others := make(chan struct{})
	var bulk sync.WaitGroup
	bulk.Go(func() { run(c, "ingest", "-q", "--log-type", "Panther.Audit", "--source-id", "ingest", input) })
	compactions, merged := 0, 0
	bulk.Go(func() {
		for i := 0; i < 50; i++ {
			select {
			case <-others:
				if i > 0 {
					return
				}
			default:
			}
			out, ok := run([]testLake{a, b}[i%2], "lake", "compact", "--older-than", "0s")
			if !ok {
				return
			}
			var periods, in int
			if _, err := fmt.Sscanf(out, "compacted %d periods: %d files", &periods, &in); err != nil {
				fail("osprey lake compact printed %q", out)
				return
			}
			compactions++
			merged += in
		}
	})

	// The kill, after some acknowledged posts to serve a and a flush of rows, and the
	// restart.
	select {
	case <-killNow:
	case <-dA.done:
		t.Fatalf("serve a exited:\n%s", dA.output())
	}
	dA.waitOutput(t, 1, "msg=committed")
	dA.cmd.Process.Kill()
	<-dA.done
	dA.cmd.Wait()
	close(killed)
	dA2 := startServeConfig(t, cfgA)
	defer dA2.cmd.Process.Kill()
	urlA.Store(&dA2.url)
	close(restarted)
	posters.Wait()
	close(aDone)
	bPosters.Wait()
	// The ingest ends, and the compactions with it.
	close(others)
	bulk.Wait()
	for name, d := range map[string]*daemon{"a": dA2, "b": dB} {
		if err := d.stop(t, syscall.SIGTERM); err != nil {
			fail("serve %s exited with %v", name, err)
		}
	}
	// Lost races in the catalog are retried, not warned of.
	for name, d := range map[string]*daemon{"a before the kill": dA, "a": dA2, "b": dB} {
		if warned(d.output()) {
			fail("serve %s warned", name)
		}
	}
	mu.Lock()
	for _, f := range failures {
		t.Error(f)
	}
	mu.Unlock()
	if t.Failed() {
		t.Logf("serve a before the kill:\n%s\nserve a after:\n%s\nserve b:\n%s", dA.output(), dA2.output(), dB.output())
		t.FailNow()
	}

	// A machine that shares only the catalog (no state directory of the lake's writers)
	// reads the lake.
	q := `SELECT actionName, count(*) AS n, count(DISTINCT p_row_id) AS ids FROM panther_logs.panther_audit GROUP BY 1`
	checker := reader
	// A machine with only the catalog reads the tables' columns from the bucket (the schema
	// files the writers put there).
	rows, err := sqlCSV(reader, q)
	if err != nil {
		t.Fatalf("a machine with only the catalog: %v", err)
	}
	count := map[string]int{}
	var total int
	for _, r := range rows {
		n, _ := strconv.Atoi(r[1])
		ids, _ := strconv.Atoi(r[2])
		if ids != n {
			t.Errorf("event %s: %d rows with %d distinct p_row_id", r[0], n, ids)
		}
		count[r[0]] += n
		total += n
	}
	var missing, twice, unknown, late []string
	for id, ok := range acked {
		if ok && count[id] != 1 {
			if count[id] == 0 {
				missing = append(missing, id)
			} else {
				twice = append(twice, id)
			}
		}
	}
	for n := range ingested {
		if id := fmt.Sprint("i-", n); count[id] != 1 {
			missing = append(missing, id)
		}
	}
	for id, n := range count {
		switch {
		case acked[id] || strings.HasPrefix(id, "i-"):
		case unacked[id]:
			late = append(late, id)
			if n > 1 {
				twice = append(twice, id)
			}
		default:
			unknown = append(unknown, id)
		}
	}
	for _, e := range []struct {
		what string
		ids  []string
	}{{"missing", missing}, {"more than once", twice}, {"never posted", unknown}} {
		if len(e.ids) > 0 {
			slices.Sort(e.ids)
			t.Errorf("%d events %s: %.20v", len(e.ids), e.what, e.ids)
		}
	}
	if want := len(acked) + ingested + len(late); total != want {
		t.Errorf("%d rows, want %d (%d acknowledged, %d ingested, %d unacknowledged that got in)", total, want, len(acked), ingested, len(late))
	}

	// osprey lake status counts the same rows (from the reader: it needs only the catalog).
	var status []struct {
		DB, Table string
		Rows      int64
	}
	out, ok := run(reader, "lake", "status", "--json")
	if !ok || json.Unmarshal([]byte(out), &status) != nil {
		t.Fatalf("osprey lake status --json: %q", out)
	}
	var statusRows int64 = -1
	for _, s := range status {
		if s.DB == lake.DBLogs && s.Table == "panther_audit" {
			statusRows = s.Rows
		}
	}
	if statusRows != int64(total) {
		t.Errorf("osprey lake status: %+v, want panther_logs.panther_audit with %d rows", status, total)
	}

	// Each serve's commit record is where its own write-ahead log ends: both stopped
	// cleanly, having flushed everything.
	for _, lk := range []testLake{a, b} {
		l, err := lake.OpenWith(t.Context(), lk.opts)
		if err != nil {
			t.Fatal(err)
		}
		meta, err := l.CommitMeta(pipeline.WriterName)
		if err != nil {
			t.Fatal(err)
		}
		log, err := wal.Open(lake.WALDir(lk.opts.Dir), wal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		next := log.Next()
		log.Close()
		if got, want := meta["wal.next"], fmt.Sprint(next); got != want || next == 0 {
			t.Errorf("state %s: the catalog records wal.next=%s, its log ends at %s", lk.opts.Dir, got, want)
		}
	}
	if compactions == 0 || merged == 0 {
		t.Errorf("%d compactions merged %d files: compaction did not run against the writers", compactions, merged)
	}
	t.Logf("checked from state %s: %d events acknowledged (%d to a before its kill), %d posts failed of which %d events got in, %d ingested; %d compactions merged %d files",
		filepath.Base(checker.opts.Dir), len(acked), ackedA.Load()*perPost, len(unacked)/perPost, len(late), ingested, compactions, merged)
}

// sqlCSV runs a query with osprey sql on the lake as lk sees it and returns its rows, without
// the header.
func sqlCSV(lk testLake, q string) ([][]string, error) {
	cmd := exec.Command("osprey", lk.with("sql", "-c", q, "--format", "csv")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("osprey sql: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("osprey sql printed %q: %w", out, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("osprey sql printed no header")
	}
	return rows[1:], nil
}

// isClosed reports whether a channel is closed.
func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
