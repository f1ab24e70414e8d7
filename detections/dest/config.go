package dest

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/ospreyhq/osprey/units"
)

// Destination types.
const (
	TypeFile    = "file"
	TypeStdout  = "stdout"
	TypeWebhook = "webhook"
	TypeSlack   = "slack"
)

// Defaults of a destination's configuration.
const (
	DefaultMaxAttempts = 10
	DefaultTimeout     = 10 * time.Second
)

// Config is one destination of osprey.yml's destinations list. Validate checks it and fills its
// defaults; New builds the destination.
type Config struct {
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
	// file; default DefaultMaxAttempts.
	MaxAttempts int `yaml:"maxAttempts,omitempty"`
	// Timeout is the limit of one request (webhook, slack); default DefaultTimeout.
	Timeout Duration `yaml:"timeout,omitempty"`
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate checks a destination and fills its defaults. Errors name the destination.
func (c *Config) Validate() error {
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
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultTimeout)
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
	isWebhook := c.Type == TypeWebhook
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
	case TypeFile:
		if c.Path == "" {
			return fail("a file destination needs a path")
		}
		if c.URL != "" {
			return fail("url is for webhook and slack destinations")
		}
	case TypeStdout:
		if c.Path != "" || c.URL != "" {
			return fail("a stdout destination takes no path or url")
		}
	case TypeWebhook, TypeSlack:
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

// ValidateAll checks a list of destinations (and fills their defaults): each one, and that
// their ids are unique.
func ValidateAll(cs []Config) error {
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
func (c *Config) SecretValue() (string, error) {
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

// Options are what destinations built by New use of the process.
type Options struct {
	Stdout io.Writer    // where stdout destinations write; default os.Stdout
	Client *http.Client // webhook and slack requests; default a client per destination
}

// New builds the destination a configuration describes. It validates c first.
func New(c Config, opts Options) (Destination, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	pol := Policy{MinSeverity: c.MinSeverity, MaxAttempts: c.MaxAttempts}
	switch c.Type {
	case TypeFile:
		return &fileDest{id: c.ID, path: c.Path, policy: pol}, nil
	case TypeStdout:
		w := opts.Stdout
		if w == nil {
			w = os.Stdout
		}
		return &writerDest{id: c.ID, w: w, policy: pol}, nil
	}
	p := poster{url: c.URL, timeout: time.Duration(c.Timeout), client: httpClient(opts.Client)}
	if c.Type == TypeSlack {
		return &slackDest{id: c.ID, poster: p, policy: pol}, nil
	}
	secret, err := c.SecretValue()
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	for k, v := range c.Headers {
		h.Set(k, v)
	}
	w := &webhookDest{id: c.ID, poster: p, policy: pol, headers: h, now: time.Now}
	if secret != "" {
		w.secret = []byte(secret)
	}
	return w, nil
}

// httpClient returns a copy of c (or of a new client) that does not follow redirects: a
// redirected POST would turn into a GET.
func httpClient(c *http.Client) *http.Client {
	var nc http.Client
	if c != nil {
		nc = *c
	} else {
		nc.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &nc
}

// Duration is a duration, written 10s, 1m30s, 6h or '1 day' (units.ParseDuration); 0 is zero.
type Duration time.Duration

// UnmarshalYAML reads a duration.
func (d *Duration) UnmarshalYAML(b []byte) error {
	v, err := units.ParseDuration(strings.Trim(strings.TrimSpace(string(b)), `"'`))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes a duration in Go's notation.
func (d Duration) MarshalYAML() ([]byte, error) {
	if d == 0 {
		return []byte("0"), nil
	}
	return []byte(time.Duration(d).String()), nil
}

// severities lists the severities, lowest first, spelled as in alerts.
var severities = []string{"Info", "Low", "Medium", "High", "Critical"}

// parseSeverity returns the spelling of a severity named in any case.
func parseSeverity(s string) (string, bool) {
	for _, sev := range severities {
		if strings.EqualFold(s, sev) {
			return sev, true
		}
	}
	return "", false
}

// severityRank returns a severity's rank (Info is 0), or -1 if s is not a severity.
func severityRank(s string) int {
	for i, sev := range severities {
		if strings.EqualFold(s, sev) {
			return i
		}
	}
	return -1
}
