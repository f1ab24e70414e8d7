package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// benchServe is the load test of osprey serve: it starts the daemon on a fresh lake with one
// HTTP source, has several clients post batches of Panther.Audit events over loopback for a
// while, and reports the events acknowledged per second, the acknowledgement latency (p50,
// p99), and the daemon's peak memory; then it stops the daemon and checks that every
// acknowledged event is in the lake.
//
//	osprey-bench serve [--duration 30s] [--clients 16] [--batch 500] [--osprey bin/osprey]
func benchServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	duration := fs.Duration("duration", 30*time.Second, "how long the clients post")
	clients := fs.Int("clients", 16, "concurrent clients")
	batch := fs.Int("batch", 500, "events per request")
	ospreyBin := fs.String("osprey", "bin/osprey", "the osprey binary to measure")
	dir := fs.String("dir", "", "working directory (default a temporary one)")
	fs.Parse(args)

	work := *dir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "osprey-bench-serve-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	lakeDir := filepath.Join(work, "lake")
	os.RemoveAll(lakeDir)
	add := exec.Command(*ospreyBin, "--lake", lakeDir, "source", "add", "load", "--log-type", "Panther.Audit",
		"--auth", "header", "--header", "x-sender-header", "--secret", "load-test")
	if out, err := add.CombinedOutput(); err != nil {
		return fmt.Errorf("source add: %v\n%s", err, out)
	}
	cmd := exec.Command(*ospreyBin, "--lake", lakeDir, "serve", "--listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	url, logs := waitListening(stderr)
	if url == "" {
		cmd.Wait()
		return fmt.Errorf("osprey serve did not start:\n%s", logs())
	}
	endpoint := url + "/http/load"

	// Request bodies are made before the clock starts: the clients measure the daemon.
	bodies := make([][]byte, 64)
	g := newAuditGen(7, time.Now().UTC(), time.Hour)
	for i := range bodies {
		var b bytes.Buffer
		for j := range *batch {
			b.Write(g.event(i**batch+j, len(bodies)**batch))
			b.WriteByte('\n')
		}
		bodies[i] = b.Bytes()
	}
	fmt.Fprintf(os.Stderr, "posting for %s from %d clients, %d events per request...\n", *duration, *clients, *batch)
	var acked, refused atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients}}
	deadline := time.Now().Add(*duration)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range *clients {
		wg.Go(func() {
			var mine []time.Duration
			for i := c; time.Now().Before(deadline); i += *clients {
				body := bodies[i%len(bodies)]
				req, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
				req.Header.Set("x-sender-header", "load-test")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					fmt.Fprintln(os.Stderr, "post:", err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					mine = append(mine, time.Since(t0))
					acked.Add(int64(*batch))
				case http.StatusTooManyRequests:
					refused.Add(1)
					time.Sleep(100 * time.Millisecond)
				default:
					fmt.Fprintln(os.Stderr, "post:", resp.Status)
					return
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	rssDone := make(chan int64)
	go func() { rssDone <- watchRSS(cmd.Process.Pid, deadline) }()
	wg.Wait()
	elapsed := time.Since(start)
	rss := <-rssDone
	stopAt := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("osprey serve: %v\n%s", err, logs())
	}
	stopTook := time.Since(stopAt)
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[int(p*float64(len(latencies)-1))]
	}
	inLake, err := countRows(lakeDir)
	if err != nil {
		return err
	}
	fmt.Printf("\nosprey serve, Panther.Audit JSON lines over HTTP on loopback, %d clients, %d events per request\n", *clients, *batch)
	fmt.Printf("  acknowledged    %d events in %.1fs: %.0f events/s (%d requests refused with 429)\n",
		acked.Load(), elapsed.Seconds(), float64(acked.Load())/elapsed.Seconds(), refused.Load())
	fmt.Printf("  ack latency     p50 %s  p99 %s  max %s\n", pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond))
	fmt.Printf("  daemon peak RSS %s\n", human(rss))
	fmt.Printf("  shutdown        %.1fs (the last flush)\n", stopTook.Seconds())
	fmt.Printf("  in the lake     %d events", inLake)
	if inLake != acked.Load() {
		fmt.Printf(" - DIFFERENT FROM THE %d ACKNOWLEDGED", acked.Load())
		return errors.New("the lake does not hold what was acknowledged")
	}
	fmt.Println(" (every acknowledged event, once)")
	return nil
}

// waitListening reads osprey serve's stderr until it says where it listens; it keeps reading
// in the background so that the daemon never blocks on a full pipe.
func waitListening(r io.Reader) (string, func() string) {
	var mu sync.Mutex
	var all strings.Builder
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			all.WriteString(line + "\n")
			mu.Unlock()
			if rest, ok := strings.CutPrefix(line, "osprey serve: listening on "); ok && !sent {
				ready <- strings.TrimSuffix(strings.Fields(rest)[0], ",")
				sent = true
			}
		}
		if !sent {
			close(ready)
		}
	}()
	url := <-ready
	return url, func() string { mu.Lock(); defer mu.Unlock(); return all.String() }
}

// watchRSS samples a process's peak resident memory (VmHWM) until deadline.
func watchRSS(pid int, deadline time.Time) int64 {
	var peak int64
	for {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
					peak = max(peak, kb<<10)
				}
			}
		}
		if time.Now().After(deadline) {
			return peak
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// countRows counts the Panther.Audit rows in a lake with DuckDB.
func countRows(lakeDir string) (int64, error) {
	db, err := sql.Open("duckdb", "?autoinstall_known_extensions=false&autoload_known_extensions=false")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	files, err := tableFiles(context.Background(), lakeDir, "panther_audit")
	if err != nil || len(files) == 0 {
		return 0, err
	}
	var n int64
	err = db.QueryRowContext(context.Background(), fmt.Sprintf("SELECT count(*) FROM read_parquet(%s)", sqlList(files))).Scan(&n)
	return n, err
}
