package logschema_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// FuzzParse reads arbitrary bytes as a log schema. Parse never panics; it either refuses the
// schema with errors that are all *logschema.Error naming the file, or returns a schema that
// validates again and compiles to a table schema.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../logtypes/schemas/*.yml")
	for _, p := range seeds[:min(len(seeds), 8)] {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("schema: Custom.X\nfields:\n  - name: a\n    type: string\n    indicators: [ip]\n"))
	f.Add([]byte("schema: Custom.X\nparser:\n  fastmatch:\n    match: ['%{a} %{b}']\nfields:\n  - name: a\n    type: timestamp\n    timeFormats: ['%Y-%m-%d']\n    isEventTime: true\n  - name: b\n    type: object\n    fields:\n      - name: c\n        type: array\n        element:\n          type: int\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := logschema.Parse(data, "x.yml")
		if err != nil {
			checkErrors(t, err, "x.yml")
			return
		}
		if s.File != "x.yml" || s.Line < 1 {
			t.Errorf("schema file %q line %d", s.File, s.Line)
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("a parsed schema does not validate again: %v", err)
		}
		if _, err := batch.Compile(s); err != nil {
			t.Fatalf("a valid schema does not compile: %v", err)
		}
	})
}

// checkErrors checks that every error joined in err is a *logschema.Error of file.
func checkErrors(t *testing.T, err error, file string) {
	t.Helper()
	if errs, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range errs.Unwrap() {
			checkErrors(t, e, file)
		}
		return
	}
	var le *logschema.Error
	if !errors.As(err, &le) || le.File != file || le.Msg == "" {
		t.Fatalf("error %T %q is not a logschema.Error of %s", err, err, file)
	}
}
