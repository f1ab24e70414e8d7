package dest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/ospreyhq/osprey/detections/alert"
)

// Destination sends alerts somewhere. Send is tried again after an error, with the same
// deliveryID, unless the error is permanent (errors.Is(err, ErrPermanent)); a Retry-After the
// destination was given is reported as a *StatusError. An Outbox sends to a destination one
// delivery at a time, in order; the destinations of this package are also safe for concurrent
// use.
//
// A Destination may also have a method Policy() Policy; the Outbox then uses its severity
// filter and attempt limit. Destinations built by New have one.
type Destination interface {
	ID() string
	Send(ctx context.Context, a *alert.Alert, deliveryID string) error
}

// Policy is how an Outbox treats a destination.
type Policy struct {
	// MinSeverity: alerts without OutputIDs reach the destination only at or above it; empty:
	// every severity. Alerts that name the destination reach it at any severity.
	MinSeverity string
	// MaxAttempts is how many times a delivery is tried before it is dead-lettered; 0: the
	// Outbox's default.
	MaxAttempts int
}

// Errors.
var (
	// ErrPermanent marks a failure that trying again cannot fix (see Permanent).
	ErrPermanent = errors.New("permanent failure")
	// ErrClosed means the Outbox is closed.
	ErrClosed = errors.New("outbox closed")
	// ErrUnknownOutput means an alert names a destination the Outbox does not have.
	ErrUnknownOutput = errors.New("unknown output id")
	// ErrBadSignature means a webhook request's signature does not match its body.
	ErrBadSignature = errors.New("bad signature")
)

// Permanent marks err as permanent: the delivery goes to the dead-letter file at once.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// StatusError is an HTTP destination's answer other than 2xx. 408, 429 and 5xx are worth
// another attempt; any other status is permanent.
type StatusError struct {
	Code       int
	Body       string        // the start of the response body
	RetryAfter time.Duration // the Retry-After of a 429 or 503; 0: none
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("HTTP %d", e.Code)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body)
}

// Is reports a status that is not worth another attempt as ErrPermanent.
func (e *StatusError) Is(target error) bool {
	return target == ErrPermanent && !retryableStatus(e.Code)
}

func retryableStatus(code int) bool {
	return code == 408 || code == 429 || code >= 500
}

// retryAfter returns the Retry-After err carries, or 0.
func retryAfter(err error) time.Duration {
	if se, ok := errors.AsType[*StatusError](err); ok {
		return se.RetryAfter
	}
	return 0
}

// writerDest writes one JSON line per alert to a writer (stdout).
type writerDest struct {
	id     string
	policy Policy
	mu     sync.Mutex
	w      io.Writer
}

var _ Destination = (*writerDest)(nil)

func (d *writerDest) ID() string     { return d.id }
func (d *writerDest) Policy() Policy { return d.policy }

func (d *writerDest) Send(_ context.Context, a *alert.Alert, _ string) error {
	line, err := jsonLine(a)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err = d.w.Write(line)
	return err
}

// fileDest appends one JSON line per alert to a file, synced before Send returns. The file is
// opened for each alert, so it may be rotated (renamed) at any time.
type fileDest struct {
	id     string
	path   string
	policy Policy
	mu     sync.Mutex
}

var _ Destination = (*fileDest)(nil)

func (d *fileDest) ID() string     { return d.id }
func (d *fileDest) Policy() Policy { return d.policy }

func (d *fileDest) Send(_ context.Context, a *alert.Alert, _ string) error {
	line, err := jsonLine(a)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(line)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

func jsonLine(a *alert.Alert) ([]byte, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, Permanent(fmt.Errorf("encode alert: %w", err))
	}
	return append(b, '\n'), nil
}
