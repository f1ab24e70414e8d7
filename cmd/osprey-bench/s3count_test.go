package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCounter sends requests of each kind through the counting proxy to a server on loopback
// and checks what it counted: the bytes each way, and the kinds the report names.
func TestCounter(t *testing.T) {
	var gotHost string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		gotHost = r.Host
		if r.Method == http.MethodGet {
			io.WriteString(w, strings.Repeat("x", 1000))
		}
	}))
	defer upstream.Close()
	c, err := startCounter(upstream.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	do := func(method, path, body string) {
		t.Helper()
		req, err := http.NewRequest(method, c.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	do("PUT", "/bench/lake/panther_logs/t/year=2026/a.parquet", strings.Repeat("p", 5000))
	do("PUT", "/bench/lake/panther_logs/t/year=2026/b.parquet", strings.Repeat("p", 3000))
	do("PUT", "/bench/lake/panther_logs/t/metadata/00001.metadata.json", "{}")
	do("GET", "/bench/lake/panther_logs/t/year=2026/a.parquet", "")
	do("GET", "/bench?list-type=2&prefix=lake/", "")
	do("POST", "/bench?delete", "<Delete/>")
	do("HEAD", "/bench", "")

	got := c.snapshot()
	want := map[string]opCount{
		"PUT data":       {N: 2, BytesIn: 8000},
		"PUT metadata":   {N: 1, BytesIn: 2},
		"GET data":       {N: 1, BytesOut: 1000},
		"LIST":           {N: 1, BytesOut: 1000},
		"DELETE objects": {N: 1, BytesIn: 9},
		"HEAD bucket":    {N: 1},
	}
	if len(got.ops) != len(want) {
		t.Errorf("kinds counted: %v, want %d kinds", got.ops, len(want))
	}
	for kind, w := range want {
		g := got.get(kind)
		if g.N != w.N || g.BytesIn != w.BytesIn || g.BytesOut != w.BytesOut {
			t.Errorf("%s: got %d requests, %d bytes up, %d down; want %d, %d, %d", kind, g.N, g.BytesIn, g.BytesOut, w.N, w.BytesIn, w.BytesOut)
		}
	}
	if got.busy <= 0 {
		t.Errorf("busy %v, want more than 0", got.busy)
	}
	// The client's Host reaches the server: S3 signatures cover it.
	if want := strings.TrimPrefix(c.URL, "http://"); gotHost != want {
		t.Errorf("upstream saw Host %q, want %q", gotHost, want)
	}
	if again := c.snapshot(); len(again.ops) != 0 {
		t.Errorf("after a snapshot: %v, want nothing counted", again.ops)
	}
}
