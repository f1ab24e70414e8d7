package schematest

import (
	"errors"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
)

// Classifier tells the log type of records as osprey ingest without --log-type does: the
// candidates in the order of a logtypes.Classifier, a text type's cheap check, then its parse.
// It is not safe for concurrent use.
type Classifier struct {
	types    []*logtypes.LogType
	cls      *logtypes.Classifier
	parsers  []logtypes.Parser
	builders []*batch.Builder
}

// NewClassifier returns a classifier among types.
func NewClassifier(types []*logtypes.LogType) (*Classifier, error) {
	c := &Classifier{types: types, cls: logtypes.NewClassifier(types),
		parsers: make([]logtypes.Parser, len(types)), builders: make([]*batch.Builder, len(types))}
	for i, lt := range types {
		p, err := lt.NewParser()
		if err != nil {
			return nil, err
		}
		c.parsers[i] = p
		c.builders[i] = batch.NewBuilder(lt.Table, batch.NewRowIDs())
	}
	return c, nil
}

// Type returns the name of the log type that takes a record, or "" when none does.
func (c *Classifier) Type(rec []byte) string {
	for _, i := range c.cls.Candidates(rec) {
		lt := c.types[i]
		if !lt.ReadsJSON() && lt.Check(rec) != nil {
			continue
		}
		b := c.builders[i]
		b.Begin()
		err := c.parsers[i].Parse(rec, b)
		b.Rollback()
		if err == nil || errors.Is(err, logtypes.ErrSkip) {
			c.cls.Won(i)
			return lt.Name
		}
	}
	return ""
}
