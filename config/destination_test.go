package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

func parseDestinations(t *testing.T, text string) ([]Destination, error) {
	t.Helper()
	var f struct {
		Destinations []Destination `yaml:"destinations"`
	}
	if err := yaml.UnmarshalWithOptions([]byte(text), &f, yaml.Strict()); err != nil {
		return nil, err
	}
	return f.Destinations, validateDestinations(f.Destinations)
}

func TestConfigErrors(t *testing.T) {
	f := func(yml, want string) {
		t.Helper()
		_, err := parseDestinations(t, "destinations:\n"+yml)
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
	cs, err := parseDestinations(t, "destinations:\n  - {id: x, type: webhook, url: 'http://127.0.0.1/h', minSeverity: critical, timeout: 1500ms, maxAttempts: 3}")
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
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(c Destination, want, wantErr string) {
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
	f(Destination{Secret: "inline"}, "inline", "")
	f(Destination{SecretEnv: "OSPREY_TEST_HOOK_KEY"}, "from-env", "")
	f(Destination{SecretFile: file}, "from-file", "")
	f(Destination{ID: "h", SecretEnv: "OSPREY_TEST_NOT_SET"}, "", "destination h: environment variable OSPREY_TEST_NOT_SET (the secret) is not set")
}
