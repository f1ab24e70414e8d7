package health

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/ospreyhq/osprey/durable"
)

// ReportInterval is how often osprey serve rewrites its report; a report much older than
// that was left by a serve that stopped.
const ReportInterval = 5 * time.Second

// Report is what osprey serve leaves in the lake of its pull sources' health
// (lake.HealthFile), for osprey source list.
type Report struct {
	Written time.Time           `json:"written"`
	Sources map[string]Snapshot `json:"sources"`
}

// Source returns the health of a source in the report (a nil report has none).
func (r *Report) Source(id string) (Snapshot, bool) {
	if r == nil {
		return Snapshot{}, false
	}
	s, ok := r.Sources[id]
	return s, ok
}

// WriteReport replaces the report at path, atomically and durably.
func WriteReport(path string, r Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return durable.WriteFile(path, b, 0o644)
}

// ReadReport reads the report at path; nil if there is none.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}
