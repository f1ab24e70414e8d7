package dest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/config"
)

// lockedBuffer is a stdout that tests read once the outbox is closed.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// alertIDsOfLines decodes JSON lines of alerts and returns their ids.
func alertIDsOfLines(t *testing.T, text string) []string {
	t.Helper()
	var ids []string
	for line := range strings.Lines(text) {
		ids = append(ids, decodeAlert(t, []byte(line)).AlertID)
	}
	return ids
}

func TestFileAndStdout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.jsonl")
	var out lockedBuffer
	file := newDest(t, config.Destination{ID: "file", Type: config.DestinationFile, Path: path}, Options{})
	stdout := newDest(t, config.Destination{ID: "console", Type: config.DestinationStdout}, Options{Stdout: &out})
	o := openOutbox(t, filepath.Join(dir, "outbox"), []Destination{file, stdout}, fastOptions())
	start(t, o)
	var want []string
	for i := range 3 {
		a := newAlert(i)
		enqueue(t, o, a)
		want = append(want, a.AlertID)
	}
	waitIdle(t, o)
	text, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := alertIDsOfLines(t, text); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("file: got alerts %v, want %v", got, want)
	}
	if got := alertIDsOfLines(t, out.String()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stdout: got alerts %v, want %v", got, want)
	}
	// A whole alert, not just its id.
	first, _, _ := strings.Cut(text, "\n")
	a := decodeAlert(t, []byte(first))
	if a.Title != "alert 0" || a.Events != 1 || !a.FirstEvent.Equal(t0.Add(-time.Minute)) || a.Runbook != "Call the owner." {
		t.Errorf("file: first alert = %+v", a)
	}
}

func TestWebhookSignature(t *testing.T) {
	t.Parallel()
	secret := "s3cret"
	var mu sync.Mutex
	var problems []string
	rc := newReceiver(t, func(r *request, w http.ResponseWriter) int {
		var p []string
		if got := r.header.Get("Content-Type"); got != "application/json" {
			p = append(p, "Content-Type "+got)
		}
		if got := r.header.Get("Authorization"); got != "Bearer abc" {
			p = append(p, "Authorization "+got)
		}
		if err := Verify([]byte(secret), r.header.Get(HeaderTimestamp), r.header.Get(HeaderSignature), r.body); err != nil {
			p = append(p, "signature: "+err.Error())
		}
		if err := Verify([]byte("other"), r.header.Get(HeaderTimestamp), r.header.Get(HeaderSignature), r.body); !errors.Is(err, ErrBadSignature) {
			p = append(p, fmt.Sprintf("signature verified with another secret: %v", err))
		}
		if len(p) > 0 {
			mu.Lock()
			problems = append(problems, p...)
			mu.Unlock()
			return http.StatusUnauthorized
		}
		return http.StatusNoContent
	})
	d := newDest(t, config.Destination{
		ID: "hook", Type: config.DestinationWebhook, URL: rc.srv.URL, Secret: secret, Headers: map[string]string{"Authorization": "Bearer abc"},
	}, Options{})
	o := openOutbox(t, t.TempDir(), []Destination{d}, fastOptions())
	start(t, o)
	a := newAlert(1)
	enqueue(t, o, a)
	waitIdle(t, o)
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the receiver found: %s", strings.Join(problems, "; "))
	}
	got := rc.accepted()
	if len(got) != 1 {
		t.Fatalf("got %d accepted requests, want 1", len(got))
	}
	if want := a.AlertID + "/hook"; got[0].delivery != want {
		t.Errorf("delivery id %q, want %q", got[0].delivery, want)
	}
	if decodeAlert(t, got[0].body).AlertID != a.AlertID {
		t.Errorf("body %s", got[0].body)
	}
}

func TestSignVerify(t *testing.T) {
	// HMAC-SHA256("key", "1700000000.{}"), computed independently:
	// printf '1700000000.{}' | openssl dgst -sha256 -hmac key
	const want = "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
	got := Sign([]byte("key"), "1700000000", []byte("{}"))
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	if err := Verify([]byte("key"), "1700000000", got, []byte("{}")); err != nil {
		t.Error(err)
	}
	for _, bad := range []struct{ ts, sig, body string }{
		{"1700000001", got, "{}"},
		{"1700000000", got, "{ }"},
		{"1700000000", strings.ToUpper(got), "{}"},
		{"1700000000", "", "{}"},
	} {
		if err := Verify([]byte("key"), bad.ts, bad.sig, []byte(bad.body)); !errors.Is(err, ErrBadSignature) {
			t.Errorf("Verify(%q, %q, %q) = %v, want ErrBadSignature", bad.ts, bad.sig, bad.body, err)
		}
	}
}

func TestSlackMessage(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	d := newDest(t, config.Destination{ID: "slack", Type: config.DestinationSlack, URL: rc.srv.URL + "/services/T0/B0/secret"}, Options{})
	o := openOutbox(t, t.TempDir(), []Destination{d}, fastOptions())
	start(t, o)
	a := newAlert(41)
	a.Title = "Root <login> & more"
	a.Description = "Someone used the root account."
	a.LogTypes = []string{"AWS.CloudTrail"}
	enqueue(t, o, a)
	waitIdle(t, o)
	got := rc.accepted()
	if len(got) != 1 {
		t.Fatalf("got %d accepted requests, want 1", len(got))
	}
	// Slack's incoming-webhook format, decoded independently of the package's types.
	type text struct{ Type, Text string }
	var msg struct {
		Text   string
		Blocks []struct {
			Type     string
			Text     *text
			Fields   []text
			Elements []text
		}
	}
	dec := json.NewDecoder(bytes.NewReader(got[0].body))
	if err := dec.Decode(&msg); err != nil {
		t.Fatalf("decode %s: %v", got[0].body, err)
	}
	if want := "[High] Root &lt;login&gt; &amp; more"; msg.Text != want {
		t.Errorf("text %q, want %q", msg.Text, want)
	}
	var types []string
	all := map[string]bool{}
	for _, b := range msg.Blocks {
		types = append(types, b.Type)
		if b.Text != nil {
			all[b.Text.Text] = true
		}
		for _, f := range append(b.Fields, b.Elements...) {
			all[f.Text] = true
		}
	}
	if got, want := strings.Join(types, ","), "header,section,section,section,context"; got != want {
		t.Errorf("blocks %s, want %s", got, want)
	}
	if h := msg.Blocks[0].Text; h == nil || h.Type != "plain_text" || h.Text != "[High] Root <login> & more" {
		t.Errorf("header %+v", h)
	}
	for _, want := range []string{
		"*Severity*\nHigh",
		"*Rule*\nTest rule (`Test.Rule`)",
		"*Events*\n42",
		"*Alert id*\n`" + a.AlertID + "`",
		"*First event*\n2024-05-02T09:59:00Z",
		"*Last event*\n2024-05-02T10:00:00Z",
		"*Description*\nSomeone used the root account.",
		"*Runbook*\nCall the owner.",
		"Osprey alert · created 2024-05-02T10:00:00Z · AWS.CloudTrail",
	} {
		if !all[want] {
			t.Errorf("no text %q in the message %s", want, got[0].body)
		}
	}
	if got[0].header.Get(HeaderSignature) != "" || got[0].header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", got[0].header)
	}
}

func TestStatusErrors(t *testing.T) {
	for code, permanent := range map[int]bool{
		400: true, 401: true, 403: true, 404: true, 410: true, 301: true,
		408: false, 429: false, 500: false, 502: false, 503: false,
	} {
		err := fmt.Errorf("wrapped: %w", &StatusError{Code: code})
		if got := errors.Is(err, ErrPermanent); got != permanent {
			t.Errorf("HTTP %d: permanent = %v, want %v", code, got, permanent)
		}
	}
	if !errors.Is(Permanent(errors.New("x")), ErrPermanent) {
		t.Error("Permanent(err) is not ErrPermanent")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 2, 10, 0, 0, 0, time.UTC)
	f := func(v string, want time.Duration) {
		t.Helper()
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
	f("", 0)
	f("7", 7*time.Second)
	f(" 120 ", 2*time.Minute)
	f("-1", 0)
	f("soon", 0)
	f("Thu, 02 May 2024 10:00:30 GMT", 30*time.Second)
	f("Thu, 02 May 2024 09:00:00 GMT", 0)
}

// A network error names the host only: Slack's URL path is its secret.
func TestErrorsHideTheURLPath(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(*request, http.ResponseWriter) int { return 0 })
	d := newDest(t, config.Destination{ID: "slack", Type: config.DestinationSlack, URL: rc.srv.URL + "/services/T0/B0/token123"}, Options{})
	err := d.Send(t.Context(), newAlert(1), "x")
	if err == nil || strings.Contains(err.Error(), "token123") || !strings.Contains(err.Error(), rc.srv.URL) {
		t.Errorf("error %v: want the host and not the path", err)
	}
	if errors.Is(err, ErrPermanent) {
		t.Errorf("a dropped connection is permanent: %v", err)
	}
}

func TestNewBuildsEveryType(t *testing.T) {
	for _, c := range []config.Destination{
		{ID: "f", Type: config.DestinationFile, Path: "/tmp/x"},
		{ID: "s", Type: config.DestinationStdout, MinSeverity: "high"},
		{ID: "w", Type: config.DestinationWebhook, URL: "http://127.0.0.1/", MaxAttempts: 2},
		{ID: "k", Type: config.DestinationSlack, URL: "https://hooks.slack.com/services/x"},
	} {
		d, err := New(c, Options{})
		if err != nil {
			t.Fatalf("New(%+v): %v", c, err)
		}
		if d.ID() != c.ID {
			t.Errorf("ID = %q, want %q", d.ID(), c.ID)
		}
		p := d.(interface{ Policy() Policy }).Policy()
		if c.MaxAttempts > 0 && p.MaxAttempts != c.MaxAttempts || c.MaxAttempts == 0 && p.MaxAttempts != config.DefaultDestinationMaxAttempts {
			t.Errorf("%s: policy %+v", c.ID, p)
		}
		if c.MinSeverity != "" && p.MinSeverity != "High" {
			t.Errorf("%s: policy %+v", c.ID, p)
		}
	}
	if _, err := New(config.Destination{ID: "w", Type: config.DestinationWebhook, URL: "http://h/", SecretEnv: "OSPREY_TEST_NOT_SET"}, Options{}); err == nil {
		t.Error("New with a missing secret: no error")
	}
}
