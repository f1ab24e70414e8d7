package dest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// DeadLetter is a line of the dead-letter file: a delivery given up on.
type DeadLetter struct {
	DeliveryID     string          `json:"deliveryId"`
	Destination    string          `json:"destination"`
	Attempts       int             `json:"attempts"`
	LastError      string          `json:"lastError"`
	EnqueuedAt     time.Time       `json:"enqueuedAt"`
	DeadLetteredAt time.Time       `json:"deadLetteredAt"`
	Alert          json.RawMessage `json:"alert"` // the alert (alert.Alert) as enqueued
}

// appendDeadLetter appends a line to the dead-letter file and syncs it.
func (o *Outbox) appendDeadLetter(dl *DeadLetter) error {
	b, err := json.Marshal(dl)
	if err != nil {
		return err
	}
	o.deadMu.Lock()
	defer o.deadMu.Unlock()
	f, err := os.OpenFile(o.DeadLetterPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// ReadDeadLetters reads a dead-letter file. Errors give the line.
func ReadDeadLetters(path string) ([]DeadLetter, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readDeadLetters(f, path)
}

func readDeadLetters(r io.Reader, name string) ([]DeadLetter, error) {
	var dls []DeadLetter
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var dl DeadLetter
			if err := json.Unmarshal(line, &dl); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, n, err)
			}
			if dl.DeliveryID == "" || dl.Destination == "" || len(dl.Alert) == 0 {
				return nil, fmt.Errorf("%s:%d: want deliveryId, destination and alert", name, n)
			}
			dls = append(dls, dl)
		}
		if err == io.EOF {
			return dls, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Replay enqueues again every delivery of a dead-letter file, for the destination it failed
// at, with its delivery id (so a receiver that did get it can drop it) and no attempts. It
// checks the whole file (every destination must be one of the outbox's) before it enqueues
// anything, and returns how many deliveries it enqueued (one already pending is skipped).
// Replay does not change the file: move the outbox's dead-letter file aside first, replay the
// moved file, then delete it, so that new dead letters are not mixed with replayed ones.
func (o *Outbox) Replay(path string) (int, error) {
	o.deadMu.Lock() // in case path is the live dead-letter file: no half-written line
	dls, err := ReadDeadLetters(path)
	o.deadMu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	recs := make([]record, len(dls))
	now := time.Now().UTC()
	for i, dl := range dls {
		if o.senders[dl.Destination] == nil {
			return 0, fmt.Errorf("replay: %s: %w %q", path, ErrUnknownOutput, dl.Destination)
		}
		recs[i] = record{ID: dl.DeliveryID, Destination: dl.Destination, EnqueuedAt: now, Alert: dl.Alert}
	}
	n, err := o.enqueue(recs)
	if err != nil {
		return n, fmt.Errorf("replay: %w", err)
	}
	return n, nil
}
