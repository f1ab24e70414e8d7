package ingest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/source/stream"
)

// candidate is a log type a source's records are classified against, with the worker's parser
// of it.
type candidate struct {
	lt     *logtypes.LogType
	parser logtypes.Parser
	last   *entry // the builder of the candidate's table, while it has one
	events int64
}

// record classifies and parses one record, or each record of an envelope.
func (w *worker) record(source string, line int64, rec []byte) {
	if len(w.in.envelopes) > 0 {
		if elems, ok, err := stream.SplitEnvelope(rec, w.in.envelopes); ok {
			for _, e := range elems {
				w.classify(source, line, e)
			}
			if err != nil {
				w.failure(source, line, rec, int64(len(rec)), err.Error(), false)
			}
			return
		}
	}
	w.classify(source, line, rec)
}

// classify parses a record as the most likely candidate log type that accepts it: the
// source's classifier (logtypes.Classifier) orders the candidates.
func (w *worker) classify(source string, line int64, rec []byte) {
	w.reasons = w.reasons[:0]
	st := w.cur
	types := st.types
	if len(types) == 0 {
		w.failure(source, line, rec, int64(len(rec)), fmt.Sprintf("source %q has no log types (it is not configured)", st.src.ID), false)
		return
	}
	if len(types) == 1 {
		// The parse itself gives the most precise reason.
		if err := w.parse(types[0], rec); err != nil && !errors.Is(err, logtypes.ErrSkip) {
			w.failure(source, line, rec, int64(len(rec)), err.Error(), false)
		} else if err != nil {
			w.skipped++
		}
		return
	}
	isJSON := logtypes.IsJSONObject(rec)
	order := st.cls.Candidates(rec)
	for _, i := range order {
		c := types[i]
		text := !c.lt.ReadsJSON()
		var err error
		if text {
			// The cheap check saves a parse of each log type that cannot match; the
			// classifier matched a JSON record's fields already.
			err = c.lt.Check(rec)
		}
		if err == nil {
			err = w.parse(c, rec)
		}
		if err == nil || errors.Is(err, logtypes.ErrSkip) {
			if err != nil {
				w.skipped++
			}
			st.cls.Won(i)
			return
		}
		if !(isJSON && text) { // a JSON record is rarely of a text format: its reasons are noise
			w.reasons = append(w.reasons, Refusal{c.lt.Name, err.Error()})
		}
	}
	switch n := st.cls.NumJSON(); {
	case !isJSON && n > 0:
		w.reasons = append(w.reasons, Refusal{fmt.Sprintf("%d JSON log %s", n, plural(n, "type", "types")), "not a JSON object"})
	case isJSON && len(order) == st.cls.NumText():
		w.reasons = append(w.reasons, Refusal{"", st.cls.NoneTakes()})
	}
	w.failure(source, line, rec, int64(len(rec)), Explain(w.reasons), false)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Refusal is why a log type refused a record.
type Refusal struct{ LogType, Reason string }

// Explain joins the reasons of the log types that refused a record, naming the types that
// gave the same reason together: "Okta.SystemLog: required field uuid is missing; not a JSON
// object (Linux.Auditd, Syslog.RFC3164)".
func Explain(reasons []Refusal) string {
	if len(reasons) == 1 {
		return reasons[0].Reason
	}
	byText := map[string][]string{}
	var order []string
	for _, r := range reasons {
		if _, ok := byText[r.Reason]; !ok {
			order = append(order, r.Reason)
		}
		byText[r.Reason] = append(byText[r.Reason], r.LogType)
	}
	parts := make([]string, len(order))
	for i, text := range order {
		if types := byText[text]; len(types) == 1 {
			parts[i] = types[0] + ": " + text
		} else {
			parts[i] = text + " (" + strings.Join(types, ", ") + ")"
		}
	}
	return strings.Join(parts, "; ")
}

// parse parses rec as a candidate's row into the builder of its table. A builder's rows may be
// of any time: the lake splits a batch by day and orders each day's rows by event time, so a
// row is parsed once whatever its time (a builder per hour cost a second parse of nearly
// every row of a file whose events are not in time order).
func (w *worker) parse(c *candidate, rec []byte) error {
	e := c.last
	if e == nil || e.b == nil {
		e = w.entry(c)
	}
	b := e.b
	w.open = b
	defer func() { w.open = nil }()
	b.Begin()
	if err := c.parser.Parse(rec, b); err != nil {
		b.Rollback()
		return err
	}
	b.End()
	e.used = w.chunks
	e.recent++
	w.records++
	c.events++
	us := b.EventMicros()
	if !w.haveEvent || us < w.earliest {
		w.earliest = us
	}
	if !w.haveEvent || us > w.latest {
		w.latest = us
	}
	w.haveEvent = true
	w.added(e, len(rec))
	return nil
}
