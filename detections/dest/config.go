package dest

import (
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ospreyhq/osprey/config"
)

// Options are what destinations built by New use of the process.
type Options struct {
	Stdout io.Writer    // where stdout destinations write; default os.Stdout
	Client *http.Client // webhook and slack requests; default a client per destination
}

// New builds the destination a configuration describes. It validates c first.
func New(c config.Destination, opts Options) (Destination, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	pol := Policy{MinSeverity: c.MinSeverity, MaxAttempts: c.MaxAttempts}
	switch c.Type {
	case config.DestinationFile:
		return &fileDest{id: c.ID, path: c.Path, policy: pol}, nil
	case config.DestinationStdout:
		w := opts.Stdout
		if w == nil {
			w = os.Stdout
		}
		return &writerDest{id: c.ID, w: w, policy: pol}, nil
	}
	p := poster{url: c.URL, timeout: time.Duration(c.Timeout), client: httpClient(opts.Client)}
	if c.Type == config.DestinationSlack {
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

// severityRank returns a severity's rank (Info is 0), or -1 if s is not a severity.
func severityRank(s string) int {
	for i, sev := range config.Severities {
		if strings.EqualFold(s, sev) {
			return i
		}
	}
	return -1
}
