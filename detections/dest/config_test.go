package dest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/detections"
)

func parseConfigs(t *testing.T, text string) ([]config.Destination, error) {
	t.Helper()
	var f struct {
		Destinations []config.Destination `yaml:"destinations"`
	}
	if err := yaml.UnmarshalWithOptions([]byte(text), &f, yaml.Strict()); err != nil {
		return nil, err
	}
	return f.Destinations, validate(f.Destinations)
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
	if got, want := cs[0].MaxAttempts, config.DefaultDestinationMaxAttempts; got != want {
		t.Errorf("default maxAttempts = %d, want %d", got, want)
	}
	if got, want := time.Duration(cs[0].Timeout), config.DefaultDestinationTimeout; got != want {
		t.Errorf("default timeout = %v, want %v", got, want)
	}
	hook := cs[2]
	if hook.Type != config.DestinationWebhook || hook.SecretEnv != "SOAR_HMAC_KEY" || hook.Headers["Authorization"] != "Bearer abc123" {
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

// validate checks destinations as osprey.yml's validation does: through a whole configuration.
func validate(ds []config.Destination) error {
	c := config.Default()
	c.Destinations = ds
	return c.Validate()
}

// The severities a destination may filter on are those of detections.
func TestSeveritiesAgree(t *testing.T) {
	var want []string
	for _, s := range detections.Severities {
		want = append(want, string(s))
	}
	if got := config.Severities; !slices.Equal(got, want) {
		t.Errorf("config.Severities = %v, want detections.Severities %v", got, want)
	}
}
