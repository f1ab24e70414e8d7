package dest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ospreyhq/osprey/detections/alert"
)

// The headers of a webhook request.
const (
	HeaderDelivery  = "X-Osprey-Delivery"  // the delivery id, the same on every attempt
	HeaderTimestamp = "X-Osprey-Timestamp" // Unix seconds of the attempt
	HeaderSignature = "X-Osprey-Signature" // "sha256=" + hex HMAC-SHA256 of timestamp + "." + body
)

// Sign returns the X-Osprey-Signature of a webhook request: "sha256=" followed by the hex
// HMAC-SHA256, keyed by secret, of the timestamp header, a dot and the body.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a webhook request's signature against its timestamp and body, in constant
// time; it returns ErrBadSignature if they do not match. Receivers should also reject
// timestamps far from their clock (a few minutes) so that a captured request cannot be
// replayed later.
func Verify(secret []byte, timestamp, signature string, body []byte) error {
	if !hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body))) {
		return ErrBadSignature
	}
	return nil
}

// webhookDest posts each alert as JSON.
type webhookDest struct {
	poster
	id      string
	policy  Policy
	secret  []byte // nil: unsigned
	headers http.Header
	now     func() time.Time
}

var _ Destination = (*webhookDest)(nil)

func (d *webhookDest) ID() string     { return d.id }
func (d *webhookDest) Policy() Policy { return d.policy }

func (d *webhookDest) Send(ctx context.Context, a *alert.Alert, deliveryID string) error {
	body, err := json.Marshal(a)
	if err != nil {
		return Permanent(fmt.Errorf("encode alert: %w", err))
	}
	h := d.headers.Clone()
	ts := strconv.FormatInt(d.now().Unix(), 10)
	h.Set("Content-Type", "application/json")
	h.Set(HeaderDelivery, deliveryID)
	h.Set(HeaderTimestamp, ts)
	if d.secret != nil {
		h.Set(HeaderSignature, Sign(d.secret, ts, body))
	}
	return d.post(ctx, h, body)
}

// poster posts request bodies and sorts the failures into permanent and retryable ones.
type poster struct {
	url     string
	timeout time.Duration
	client  *http.Client
}

// maxErrorBody is how much of a failed response's body an error keeps.
const maxErrorBody = 256

func (p *poster) post(ctx context.Context, h http.Header, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("post to %s: %w", redact(p.url), err))
	}
	req.Header = h
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "osprey")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		// The error quotes the URL, which may hold a token (Slack's does): keep its host only.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("post to %s: %w", redact(p.url), err)
	}
	defer resp.Body.Close()
	start, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	se := &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(strings.ToValidUTF8(string(start), "?"))}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		se.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return se
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date. It returns 0 if there is
// none or it cannot be read.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 1<<31)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// redact returns the scheme and host of a URL: its path or query may hold a token.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the destination"
	}
	return u.Scheme + "://" + u.Host
}
