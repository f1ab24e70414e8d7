package config

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestGood(t *testing.T) {
	c, err := Load("testdata/good.yml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Lake != "/var/lib/osprey" || c.Listen != "127.0.0.1:9090" || time.Duration(c.Flush.Age) != 30*time.Second ||
		c.Flush.Bytes != 64<<20 || c.Flush.MaxBacklog != 1<<30 {
		t.Errorf("config %+v", c)
	}
	if len(c.Sources) != 5 {
		t.Fatalf("%d sources", len(c.Sources))
	}
	if b := c.Sources[3]; b.S3 == nil || b.S3.Bucket != "trail-logs" || len(b.S3.Prefixes) != 2 || !b.S3.Prefixes[1].Exclude ||
		!b.S3.PathStyle || time.Duration(b.S3.Visibility) != 2*time.Minute || !b.IsPull() {
		t.Errorf("s3 source %+v", b)
	}
	if r := c.Sources[4]; r.Rapid7 == nil || r.Rapid7.Region != "us3" || time.Duration(r.Rapid7.Interval) != 5*time.Minute ||
		len(r.LogTypes) != 1 || r.LogTypes[0] != "Rapid7.AuditLog" {
		t.Errorf("rapid7 source %+v", r)
	}
	fb, trail, sys := c.Sources[0], c.Sources[1], c.Sources[2]
	if fb.Label != "fluentbit" || fb.MaxBody != 5<<20 || fb.Auth.Type != "header" {
		t.Errorf("fluentbit %+v", fb)
	}
	if trail.AlarmAfter() != 48*time.Hour || trail.Envelope != "Records" || fb.AlarmAfter() != DefaultDropOffAlarm {
		t.Errorf("trail %+v", trail)
	}
	if len(sys.Listen) != 1 || sys.Listen[0] != "udp://127.0.0.1:5514" {
		t.Errorf("syslog %+v", sys)
	}
	if got, want := sys.Syslog.Limits(), (Syslog{MaxMessage: 8 << 10, MaxConnections: DefaultSyslogMaxConnections, IdleTimeout: Duration(time.Minute)}); got != want {
		t.Errorf("syslog limits %+v, want %+v", got, want)
	}
	t.Setenv("OSPREY_TEST_SECRET", "s3cret")
	if s, err := fb.Auth.SecretValue(); s != "s3cret" || err != nil {
		t.Errorf("secret %q, %v", s, err)
	}
	if d := c.Detections; !reflect.DeepEqual(d.Dirs, []string{"./rules"}) || !d.Builtin || time.Duration(d.MaxDelay) != 100*time.Millisecond {
		t.Errorf("detections %+v", d)
	}
	if len(c.Destinations) != 2 || c.Destinations[1].URL != "https://soar.example.com/hooks/osprey" || c.Destinations[1].MaxAttempts != 4 ||
		c.Destinations[0].MaxAttempts != 10 {
		t.Errorf("destinations %+v", c.Destinations)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse(nil, "empty.yml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Lake != DefaultLake || c.Listen != DefaultListen || len(c.Sources) != 0 || time.Duration(c.Detections.MaxDelay) != DefaultMaxDelay {
		t.Errorf("defaults %+v", c)
	}
	want := HTTP{ReadHeaderTimeout: Duration(DefaultReadHeaderTimeout), ReadTimeout: Duration(DefaultReadTimeout),
		WriteTimeout: Duration(DefaultWriteTimeout), IdleTimeout: Duration(DefaultIdleTimeout),
		MaxConns: DefaultMaxConns, MaxSourceRequests: DefaultMaxSourceRequests, BodyMemory: DefaultBodyMemory}
	if c.HTTP != want || c.Metrics.Auth != MetricsAuthNone {
		t.Errorf("http %+v, metrics %+v; want %+v", c.HTTP, c.Metrics, want)
	}
}

func TestHTTP(t *testing.T) {
	c, err := Parse([]byte(`
http:
  readHeaderTimeout: 1s
  readTimeout: 2s
  maxConns: 64
  bodyMemory: 64MiB
metrics:
  auth: token
sources:
  - id: hook
    type: http
    logTypes: [Panther.Audit]
    auth: {type: hmac, header: x-signature, secret: k, timestampHeader: x-timestamp, window: 1m}
`), "http.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := HTTP{ReadHeaderTimeout: Duration(time.Second), ReadTimeout: Duration(2 * time.Second),
		WriteTimeout: Duration(DefaultWriteTimeout), IdleTimeout: Duration(DefaultIdleTimeout),
		MaxConns: 64, MaxSourceRequests: DefaultMaxSourceRequests, BodyMemory: 64 << 20}
	if c.HTTP != want || c.Metrics.Auth != MetricsAuthToken {
		t.Errorf("http %+v, metrics %+v; want %+v", c.HTTP, c.Metrics, want)
	}
	if a := c.Sources[0].Auth; a.TimestampHeader != "x-timestamp" || time.Duration(a.Window) != time.Minute {
		t.Errorf("auth %+v", a)
	}
}

func TestBad(t *testing.T) {
	f := func(yml, want string) {
		t.Helper()
		_, err := Parse([]byte(yml), "bad.yml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", yml, err, want)
		}
	}
	f("lisen: x", "unknown field \"lisen\"")
	f("flush:\n  age: soon", "duration \"soon\"")
	f("flush:\n  bytes: 3 parsecs", "size \"3 parsecs\"")
	f("sources:\n  - id: a\n    type: http", "logTypes is empty")
	f("sources:\n  - id: 'a b'\n    type: http\n    logTypes: [X]", "id \"a b\"")
	f("sources:\n  - id: a\n    type: ftp\n    logTypes: [X]", "type \"ftp\"")
	f("sources:\n  - id: a\n    type: http\n    logTypes: [X]\n  - id: a\n    type: http\n    logTypes: [X]", "used twice")
	f("sources:\n  - id: a\n    type: http\n    logTypes: [X]\n    stream: xml", "stream \"xml\"")
	f("sources:\n  - id: a\n    type: http\n    logTypes: [X]\n    envelope: Records", "envelope is for the jsonarray")
	f("sources:\n  - id: a\n    type: syslog\n    logTypes: [X]", "needs listen")
	f("sources:\n  - id: a\n    type: syslog\n    listen: 127.0.0.1:514\n    logTypes: [X]", "want udp://")
	f("sources:\n  - id: a\n    type: http\n    logTypes: [X]\n    auth:\n      secret: x\n      secretEnv: Y", "one of secret")
	f("workers: -1", "workers")
	f("detections:\n  dirs: ['']", "dirs[0] is empty")
	f("detections:\n  maxDelay: -1s", `duration "-1s": negative`)
	f("detections:\n  maxDelay: 7 fortnights", `unknown unit "fortnights"`)
	f("flush:\n  bytes: 10 furlongs", `unknown unit "furlongs"`)
	f("destinations:\n  - id: x\n    type: pager", "destinations[0]")
	f("destinations:\n  - id: x\n    type: stdout\n  - id: x\n    type: stdout", "used twice")
	s3 := "sources:\n  - id: a\n    type: s3\n    logTypes: [X]\n"
	f(s3, "needs s3.bucket")
	f(s3+"    s3: {bucket: b, prefix: /x}", "must not start with /")
	f(s3+"    s3: {bucket: b, prefixes: [{prefix: p/}]}", "give logTypes or exclude")
	f(s3+"    s3: {bucket: b, prefixes: [{prefix: p/, exclude: true}, {prefix: p/, exclude: true}]}", "given twice")
	f(s3+"    s3: {bucket: b, prefix: a/, prefixes: [{prefix: b/, exclude: true}]}", "outside the prefix filter")
	f(s3+"    s3: {bucket: b, visibility: 1s}", "at least 10s")
	f(s3+"    s3: {bucket: b}\n    stream: json", "are for http and syslog")
	r7 := "sources:\n  - id: a\n    type: rapid7\n"
	f(r7, "needs rapid7.region")
	f(r7+"    rapid7: {region: us3}", "give one of rapid7.apiKeyEnv")
	f(r7+"    rapid7: {region: us3, apiKeyEnv: K, apiKeyFile: f}", "give one of rapid7.apiKeyEnv")
	f(r7+"    rapid7: {region: 'https://x', apiKeyEnv: K}", "want a region code")
	f(r7+"    rapid7: {region: us3, apiKey: inline}", "unknown field")
	f("sources:\n  - id: a\n    type: http\n    logTypes: [X]\n    s3: {bucket: b}", "s3 settings are for s3 sources")
	sys := "sources:\n  - id: a\n    type: syslog\n    listen: tcp://127.0.0.1:514\n    logTypes: [X]\n"
	f(sys+"    syslog: {maxMessage: 100}", "syslog.maxMessage 100: want 480 bytes to 16MiB")
	f(sys+"    syslog: {maxMessage: 17MiB}", "syslog.maxMessage 17825792: want 480 bytes to 16MiB")
	f(sys+"    syslog: {maxConnections: -1}", "syslog.maxConnections must not be negative")
	f(sys+"    syslog: {idleTimeout: 10ms}", "syslog.idleTimeout must be at least 1s")
	f(sys+"    syslog: {maxLine: 1}", "unknown field")
	f("sources:\n  - id: a\n    type: http\n    logTypes: [X]\n    syslog: {maxConnections: 1}", "syslog settings are for syslog sources")
	f("http:\n  readTimeout: -1s", `duration "-1s": negative`)
	f("http:\n  readHeaderTimeout: 2m\n  readTimeout: 1m", "readHeaderTimeout must not be longer")
	f("http:\n  writeTimeout: 10s", "writeTimeout must be at least readTimeout")
	f("http:\n  maxConns: -1", "must not be negative")
	f("http:\n  bodyMemory: lots", "size \"lots\"")
	f("metrics:\n  auth: basic", "metrics: auth \"basic\"")
	f("metrics:\n  token: required", "unknown field")
	hook := "sources:\n  - id: a\n    type: http\n    logTypes: [X]\n"
	f(hook+"    auth: {type: header, header: h, secret: s, timestampHeader: t}", "are for auth hmac")
	f(hook+"    auth: {type: hmac, header: h, secret: s, window: 1m}", "auth window")
	f(hook+"    auth: {type: hmac, header: h, secret: s, timestampHeader: t, window: -1m}", `duration "-1m": negative`)
}

func TestSyslogLimits(t *testing.T) {
	var none *Syslog
	want := Syslog{MaxMessage: DefaultSyslogMaxMessage, MaxConnections: DefaultSyslogMaxConnections, IdleTimeout: Duration(DefaultSyslogIdleTimeout)}
	if got := none.Limits(); got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	if got := (&Syslog{MaxConnections: 3}).Limits(); got.MaxConnections != 3 || got.MaxMessage != DefaultSyslogMaxMessage {
		t.Errorf("limits %+v", got)
	}
}

func TestLakeSources(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(dir+"/_osprey", 0o755); err != nil {
		t.Fatal(err)
	}
	if s, err := LoadLakeSources(dir); s != nil || err != nil {
		t.Fatalf("no file: %v, %v", s, err)
	}
	in := []Source{
		{ID: "a", Type: SourceHTTP, LogTypes: []string{"Panther.Audit"}, Auth: Auth{Type: "bearer", Secret: "t"}, MaxBody: 1 << 20, DropOffAlarm: ptr(Duration(time.Hour))},
		{ID: "b", Type: SourceSyslog, LogTypes: []string{"Syslog.RFC5424"}, Listen: Strings{"udp://127.0.0.1:5514"}},
	}
	for i := range in {
		if err := in[i].Validate(); err != nil {
			t.Fatal(err)
		}
	}
	if err := SaveLakeSources(dir, in); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(LakeSourcesFile(dir))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("sources file mode %v, %v", info.Mode(), err)
	}
	out, err := LoadLakeSources(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The inline secret is kept as its SHA-256.
	sum := sha256.Sum256([]byte("t"))
	in[0].Auth = Auth{Type: "bearer", SecretSHA256: hex.EncodeToString(sum[:])}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("read back %+v, want %+v", out, in)
	}
}

func ptr[T any](v T) *T { return &v }

func TestAlarmAfter(t *testing.T) {
	off := Duration(0)
	for _, tc := range []struct {
		s    Source
		want time.Duration
	}{
		{Source{LogTypes: []string{"Linux.Auditd"}}, DefaultDropOffAlarm},
		{Source{LogTypes: []string{"Panther.Audit"}}, 0},
		{Source{LogTypes: []string{"Panther.Audit", "Linux.Auditd"}}, DefaultDropOffAlarm},
		{Source{LogTypes: []string{"Panther.Audit"}, DropOffAlarm: ptr(Duration(time.Hour))}, time.Hour},
		{Source{LogTypes: []string{"Linux.Auditd"}, DropOffAlarm: &off}, 0},
	} {
		if got := tc.s.AlarmAfter(); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.s.LogTypes, got, tc.want)
		}
	}
}

// TestOneGrammar reads durations and sizes written the ways units accepts.
func TestOneGrammar(t *testing.T) {
	path := filepath.Join(t.TempDir(), "osprey.yml")
	if err := os.WriteFile(path, []byte("flush:\n  age: '2 min'\n  bytes: 64 MiB\ndetections:\n  maxDelay: 1.5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.Flush.Age) != 2*time.Minute || c.Flush.Bytes != 64<<20 || time.Duration(c.Detections.MaxDelay) != 1500*time.Millisecond {
		t.Errorf("age %v, bytes %d, maxDelay %v", time.Duration(c.Flush.Age), c.Flush.Bytes, time.Duration(c.Detections.MaxDelay))
	}
}
