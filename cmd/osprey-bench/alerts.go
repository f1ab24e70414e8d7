package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// benchAlerts measures alert latency under load: osprey serve with --rules streaming rules
// (those of osprey-bench detect) and a probe rule, a webhook destination served here, and
// clients posting Panther.Audit events at --rate events/s. Every --probe-every'th event of a
// request is a probe: an event only the probe rule matches, with a dedup string of its own, so
// each raises one alert. The latency of a probe is from the start of the POST that carried it
// to the webhook's receipt of its alert. It prints the events/s sustained, the latency
// percentiles, and checks that every probe raised exactly one alert.
//
//	osprey-bench alerts [--rate 5000] [--duration 30s] [--rules 50] [--osprey bin/osprey]
func benchAlerts(args []string) error {
	fs := flag.NewFlagSet("alerts", flag.ExitOnError)
	rate := fs.Int("rate", 5000, "events per second posted")
	duration := fs.Duration("duration", 30*time.Second, "how long the clients post")
	rules := fs.Int("rules", 50, "streaming rules besides the probe rule")
	clients := fs.Int("clients", 4, "concurrent clients")
	batch := fs.Int("batch", 100, "events per request")
	probeEvery := fs.Int("probe-every", 500, "one probe event per this many events")
	ospreyBin := fs.String("osprey", "bin/osprey", "the osprey binary to measure")
	fs.Parse(args)

	work, err := os.MkdirTemp("", "osprey-bench-alerts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	ruleDir := filepath.Join(work, "rules")
	if err := writeBenchRules(ruleDir, *rules); err != nil {
		return err
	}
	probe := "AnalysisType: rule\nRuleID: Bench.Probe\nLogTypes: [Panther.Audit]\nSeverity: High\nQuery: |\n" +
		"  SELECT *, actionDescription AS alert_title, actionDescription AS alert_dedup\n" +
		"  FROM panther_logs.panther_audit WHERE actionName = 'BENCH_PROBE'\n"
	if err := os.WriteFile(filepath.Join(ruleDir, "probe.yml"), []byte(probe), 0o644); err != nil {
		return err
	}

	// The webhook: the time each probe's alert arrives, and how many alerts each probe got.
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	alertsOf := map[string]int{}
	var others atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		var a struct {
			RuleID string `json:"ruleId"`
			Title  string `json:"title"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &a); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if a.RuleID != "Bench.Probe" {
			others.Add(1)
			return
		}
		mu.Lock()
		if _, ok := arrived[a.Title]; !ok {
			arrived[a.Title] = now
		}
		alertsOf[a.Title]++
		mu.Unlock()
	}))
	defer hook.Close()

	lakeDir := filepath.Join(work, "lake")
	cfg := fmt.Sprintf("lake: %s\nsources:\n  - id: load\n    type: http\n    logTypes: [Panther.Audit]\n"+
		"detections:\n  dirs: [%s]\ndestinations:\n  - id: hook\n    type: webhook\n    url: %s\n    secret: bench\n",
		lakeDir, ruleDir, hook.URL)
	cfgPath := filepath.Join(work, "osprey.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(*ospreyBin, "serve", "--config", cfgPath, "--listen", "127.0.0.1:0")
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

	// Bodies are made before the clock starts; probes get their id when sent.
	g := newAuditGen(11, time.Now().UTC(), time.Minute)
	bodies := make([][]byte, 64)
	for i := range bodies {
		var b bytes.Buffer
		for j := range *batch {
			b.Write(g.event(i**batch+j, len(bodies)**batch))
			b.WriteByte('\n')
		}
		bodies[i] = b.Bytes()
	}
	interval := time.Duration(float64(time.Second) * float64(*batch**clients) / float64(*rate))
	fmt.Fprintf(os.Stderr, "posting %d events/s for %s (%d clients, a request of %d events every %s each), %d rules + the probe rule...\n",
		*rate, *duration, *clients, *batch, interval, *rules)
	sent := map[string]time.Time{}
	var posted, probes atomic.Int64
	var seq atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients}}
	deadline := time.Now().Add(*duration)
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	for c := range *clients {
		wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := c; time.Now().Before(deadline); i += *clients {
				var body bytes.Buffer
				body.Write(bodies[i%len(bodies)])
				var ids []string
				for n := int64(0); n < int64(*batch); n++ {
					if seq.Add(1)%int64(*probeEvery) == 0 {
						id := fmt.Sprintf("probe-%d", seq.Load())
						ids = append(ids, id)
						fmt.Fprintf(&body, `{"actionName":"BENCH_PROBE","actionDescription":%q,"actionResult":"SUCCEEDED","actor":{"id":"bench","type":"TOKEN"},"timestamp":%q,"pantherVersion":"1.0"}`+"\n",
							id, time.Now().UTC().Format(time.RFC3339Nano))
					}
				}
				t0 := time.Now()
				resp, err := client.Post(endpoint, "application/x-ndjson", &body)
				if err != nil {
					failed.Store(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Store(fmt.Errorf("post: %s", resp.Status))
					return
				}
				posted.Add(int64(*batch + len(ids)))
				probes.Add(int64(len(ids)))
				mu.Lock()
				for _, id := range ids {
					sent[id] = t0
				}
				mu.Unlock()
				<-tick.C
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, ok := failed.Load().(error); ok {
		return err
	}
	// Wait for the last alerts (up to 30 s), then stop the daemon.
	for wait := time.Now().Add(30 * time.Second); time.Now().Before(wait); time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		done := len(arrived) >= len(sent)
		mu.Unlock()
		if done {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("osprey serve: %v\n%s", err, logs())
	}
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	missing, twice := 0, 0
	for id, t0 := range sent {
		t1, ok := arrived[id]
		if !ok {
			missing++
			continue
		}
		if alertsOf[id] > 1 {
			twice++
		}
		lat = append(lat, t1.Sub(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(p*float64(len(lat)-1))].Round(time.Millisecond)
	}
	fmt.Printf("\nosprey serve with %d streaming rules + a probe rule, a webhook destination on loopback\n", *rules)
	fmt.Printf("  posted          %d events in %.1fs: %.0f events/s\n", posted.Load(), elapsed.Seconds(), float64(posted.Load())/elapsed.Seconds())
	fmt.Printf("  probes          %d sent, %d alerts received, %d missing, %d received more than once; %d alerts of other rules\n",
		len(sent), len(lat), missing, twice, others.Load())
	fmt.Printf("  alert latency   p50 %s  p99 %s  max %s  (POST start to webhook receipt)\n", pct(0.5), pct(0.99), pct(1))
	if missing > 0 || twice > 0 {
		return fmt.Errorf("%d probes raised no alert, %d raised more than one", missing, twice)
	}
	return nil
}
