package dest

import (
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

func parseConfigs(t *testing.T, text string) ([]Config, error) {
	t.Helper()
	var f struct {
		Destinations []Config `yaml:"destinations"`
	}
	if err := yaml.UnmarshalWithOptions([]byte(text), &f, yaml.Strict()); err != nil {
		return nil, err
	}
	return f.Destinations, ValidateAll(f.Destinations)
}

// The example of the package documentation is a valid configuration.
func TestConfigExample(t *testing.T) {
	doc := packageDocExample(t)
	cs, err := parseConfigs(t, doc)
	if err != nil {
		t.Fatalf("the doc.go example: %v\n%s", err, doc)
	}
	if len(cs) != 4 {
		t.Fatalf("got %d destinations, want 4", len(cs))
	}
	if got, want := cs[0].MaxAttempts, DefaultMaxAttempts; got != want {
		t.Errorf("default maxAttempts = %d, want %d", got, want)
	}
	if got, want := time.Duration(cs[0].Timeout), DefaultTimeout; got != want {
		t.Errorf("default timeout = %v, want %v", got, want)
	}
	hook := cs[2]
	if hook.Type != TypeWebhook || hook.SecretEnv != "SOAR_HMAC_KEY" || hook.Headers["Authorization"] != "Bearer abc123" {
		t.Errorf("webhook = %+v", hook)
	}
	if cs[3].MinSeverity != "High" {
		t.Errorf("minSeverity = %q, want High", cs[3].MinSeverity)
	}
}

// packageDocExample returns the YAML of doc.go's configuration example.
func packageDocExample(t *testing.T) string {
	t.Helper()
	b, err := readFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for line := range strings.Lines(b) {
		line = strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(line, "//\tdestinations:") {
			in = true
		}
		if in {
			text, ok := strings.CutPrefix(line, "//\t")
			if !ok {
				break
			}
			out = append(out, text)
		}
	}
	return strings.Join(out, "\n")
}

func TestConfigErrors(t *testing.T) {
	f := func(yml, want string) {
		t.Helper()
		_, err := parseConfigs(t, "destinations:\n"+yml)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config\n%s\ngot error %v, want one containing %q", yml, err, want)
		}
	}
	f("  - {type: stdout}", `destination id "": want 1 to 64 letters`)
	f("  - {id: a b, type: stdout}", `destination id "a b"`)
	f("  - {id: x, type: email}", `destination x: type "email" (want file, stdout, webhook or slack)`)
	f("  - {id: x, type: file}", "destination x: a file destination needs a path")
	f("  - {id: x, type: webhook}", "destination x: a webhook destination needs a url")
	f("  - {id: x, type: slack, url: 'ftp://x'}", "destination x: url: want an http:// or https:// URL")
	f("  - {id: x, type: slack, url: 'https://h/x', secret: s}", "destination x: secret, secretEnv and secretFile are for webhook destinations")
	f("  - {id: x, type: webhook, url: 'https://h/x', secret: s, secretEnv: S}", "destination x: give one of secret, secretEnv and secretFile")
	f("  - {id: x, type: webhook, url: 'https://h/x', headers: {X-Osprey-Delivery: a}}", `destination x: header "X-Osprey-Delivery" is set by osprey`)
	f("  - {id: x, type: stdout, headers: {A: b}}", "destination x: headers are for webhook destinations")
	f("  - {id: x, type: stdout, minSeverity: Urgent}", `destination x: minSeverity "Urgent" (want Info, Low, Medium, High or Critical)`)
	f("  - {id: x, type: stdout, maxAttempts: -1}", "destination x: maxAttempts and timeout must not be negative")
	f("  - {id: x, type: stdout, path: /tmp/a}", "destination x: a stdout destination takes no path or url")
	f("  - {id: x, type: file, path: /tmp/a, url: 'https://h'}", "destination x: url is for webhook and slack destinations")
	f("  - {id: x, type: stdout, timeout: soon}", `duration "soon"`)
	f("  - {id: x, type: stdout}\n  - {id: x, type: stdout}", `destinations[1]: id "x" is used twice`)
	f("  - {id: x, type: stdout, colour: red}", `unknown field "colour"`)
}

func TestConfigNormalizes(t *testing.T) {
	cs, err := parseConfigs(t, "destinations:\n  - {id: x, type: webhook, url: 'http://127.0.0.1/h', minSeverity: critical, timeout: 1500ms, maxAttempts: 3}")
	if err != nil {
		t.Fatal(err)
	}
	c := cs[0]
	if c.MinSeverity != "Critical" || time.Duration(c.Timeout) != 1500*time.Millisecond || c.MaxAttempts != 3 {
		t.Errorf("got %+v", c)
	}
}

func TestSecretValue(t *testing.T) {
	t.Setenv("OSPREY_TEST_HOOK_KEY", "from-env")
	file := t.TempDir() + "/key"
	if err := writeFile(file, "from-file\n"); err != nil {
		t.Fatal(err)
	}
	f := func(c Config, want, wantErr string) {
		t.Helper()
		got, err := c.SecretValue()
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("SecretValue(%+v) error = %v, want %q", c, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("SecretValue(%+v) = %q, %v; want %q", c, got, err, want)
		}
	}
	f(Config{Secret: "inline"}, "inline", "")
	f(Config{SecretEnv: "OSPREY_TEST_HOOK_KEY"}, "from-env", "")
	f(Config{SecretFile: file}, "from-file", "")
	f(Config{ID: "h", SecretEnv: "OSPREY_TEST_NOT_SET"}, "", "destination h: environment variable OSPREY_TEST_NOT_SET (the secret) is not set")
}
