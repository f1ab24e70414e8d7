package config

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Destination types.
const (
	DestinationFile    = "file"
	DestinationStdout  = "stdout"
	DestinationWebhook = "webhook"
	DestinationSlack   = "slack"
)

// Defaults of a destination's configuration.
const (
	DefaultDestinationMaxAttempts = 10
	DefaultDestinationTimeout     = 10 * time.Second
)

// Destination is one destination of osprey.yml's destinations list. Validate checks it and fills
// its defaults; package dest builds the destination (dest.New).
type Destination struct {
	ID   string `yaml:"id"`             // required, unique; what rules name in OutputIds
	Type string `yaml:"type"`           // file, stdout, webhook or slack
	Path string `yaml:"path,omitempty"` // file: the JSON-lines file, appended to
	URL  string `yaml:"url,omitempty"`  // webhook, slack: where alerts are posted
	// Secret, SecretEnv or SecretFile (at most one) is the key of a webhook's HMAC signature.
	Secret     string `yaml:"secret,omitempty"`
	SecretEnv  string `yaml:"secretEnv,omitempty"`
	SecretFile string `yaml:"secretFile,omitempty"`
	// Headers are added to a webhook's requests (Authorization, for instance).
	Headers map[string]string `yaml:"headers,omitempty"`
	// MinSeverity: alerts routed to every destination (their rule has no OutputIds) reach this
	// one only at or above this severity. A rule that names the destination in its OutputIds
	// reaches it at any severity. Empty: every severity.
	MinSeverity string `yaml:"minSeverity,omitempty"`
	// MaxAttempts is how many times a delivery is tried before it goes to the dead-letter
	// file; default DefaultDestinationMaxAttempts.
	MaxAttempts int `yaml:"maxAttempts,omitempty"`
	// Timeout is the limit of one request (webhook, slack); default DefaultDestinationTimeout.
	Timeout Duration `yaml:"timeout,omitempty"`
}

// Validate checks a destination and fills its defaults. Errors name the destination.
func (c *Destination) Validate() error {
	if !idPattern.MatchString(c.ID) {
		return fmt.Errorf("destination id %q: want 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", c.ID)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("destination %s: %s", c.ID, fmt.Sprintf(format, args...))
	}
	if c.MaxAttempts < 0 || c.Timeout < 0 {
		return fail("maxAttempts and timeout must not be negative")
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultDestinationMaxAttempts
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultDestinationTimeout)
	}
	if c.MinSeverity != "" {
		sev, ok := parseSeverity(c.MinSeverity)
		if !ok {
			return fail("minSeverity %q (want Info, Low, Medium, High or Critical)", c.MinSeverity)
		}
		c.MinSeverity = sev
	}
	secrets := 0
	for _, v := range []string{c.Secret, c.SecretEnv, c.SecretFile} {
		if v != "" {
			secrets++
		}
	}
	isWebhook := c.Type == DestinationWebhook
	switch {
	case secrets > 0 && !isWebhook:
		return fail("secret, secretEnv and secretFile are for webhook destinations")
	case secrets > 1:
		return fail("give one of secret, secretEnv and secretFile")
	case len(c.Headers) > 0 && !isWebhook:
		return fail("headers are for webhook destinations")
	}
	for k := range c.Headers {
		if lk := strings.ToLower(k); lk == "content-type" || strings.HasPrefix(lk, "x-osprey-") {
			return fail("header %q is set by osprey", k)
		}
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			return fail("header name %q", k)
		}
	}
	switch c.Type {
	case DestinationFile:
		if c.Path == "" {
			return fail("a file destination needs a path")
		}
		if c.URL != "" {
			return fail("url is for webhook and slack destinations")
		}
	case DestinationStdout:
		if c.Path != "" || c.URL != "" {
			return fail("a stdout destination takes no path or url")
		}
	case DestinationWebhook, DestinationSlack:
		if c.Path != "" {
			return fail("path is for file destinations")
		}
		if c.URL == "" {
			return fail("a %s destination needs a url", c.Type)
		}
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fail("url: want an http:// or https:// URL")
		}
	default:
		return fail("type %q (want file, stdout, webhook or slack)", c.Type)
	}
	return nil
}

// validateDestinations checks a list of destinations (and fills their defaults): each one, and that
// their ids are unique.
func validateDestinations(cs []Destination) error {
	seen := map[string]bool{}
	for i := range cs {
		if err := cs[i].Validate(); err != nil {
			return fmt.Errorf("destinations[%d]: %w", i, err)
		}
		if seen[cs[i].ID] {
			return fmt.Errorf("destinations[%d]: id %q is used twice", i, cs[i].ID)
		}
		seen[cs[i].ID] = true
	}
	return nil
}

// SecretValue returns a webhook's signing key: inline, from an environment variable or from a
// file (without its final line break). Empty: requests are not signed.
func (c *Destination) SecretValue() (string, error) {
	switch {
	case c.SecretEnv != "":
		v, ok := os.LookupEnv(c.SecretEnv)
		if !ok || v == "" {
			return "", fmt.Errorf("destination %s: environment variable %s (the secret) is not set", c.ID, c.SecretEnv)
		}
		return v, nil
	case c.SecretFile != "":
		b, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return "", fmt.Errorf("destination %s: read the secret: %w", c.ID, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return c.Secret, nil
}

// Severities lists the severities a destination's minSeverity may name, lowest first, spelled as
// detections spell them (detections.Severities; a test in package dest checks they agree).
var Severities = []string{"Info", "Low", "Medium", "High", "Critical"}

// parseSeverity returns the spelling of a severity named in any case.
func parseSeverity(s string) (string, bool) {
	for _, sev := range Severities {
		if strings.EqualFold(s, sev) {
			return sev, true
		}
	}
	return "", false
}
