package objstore

import (
	"context"
	"strings"
	"testing"

	"github.com/ospreyhq/osprey/internal/awsx"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		loc, bucket, prefix string
		ok                  bool
	}{
		{"s3://b/p", "b", "p", true},
		{"s3://b/p/q/", "b", "p/q", true},
		{"s3://b", "b", "", true},
		{"s3://b/", "b", "", true},
		{"s3://", "", "", false},
		{"s3:///p", "", "", false},
		{"s3://b/p//q", "", "", false},
		{"s3://b/../etc", "", "", false},
		{"s3://b/p/./q", "", "", false},
		{"s3://b/p?x=1", "", "", false},
		{"s3://user@b/p", "", "", false},
		{"http://b/p", "", "", false},
		{"/local/dir", "", "", false},
	} {
		bucket, prefix, err := Parse(tc.loc)
		if (err == nil) != tc.ok || bucket != tc.bucket || prefix != tc.prefix {
			t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q, ok %v", tc.loc, bucket, prefix, err, tc.bucket, tc.prefix, tc.ok)
		}
	}
}

// TestLocation: a store's locations are under its prefix, and a key is read back only from a
// location in its bucket.
func TestLocation(t *testing.T) {
	s := &Store{bucket: "b", prefix: "lake/x"}
	if got := s.Location("panther_logs/t/f.parquet"); got != "s3://b/lake/x/panther_logs/t/f.parquet" {
		t.Errorf("Location: %s", got)
	}
	if got := s.Root(); got != "s3://b/lake/x" {
		t.Errorf("Root: %s", got)
	}
	if k, err := s.key("s3://b/lake/x/f"); err != nil || k != "lake/x/f" {
		t.Errorf("key: %q, %v", k, err)
	}
	for _, loc := range []string{"s3://other/lake/x/f", "s3://b/", "/tmp/f", "s3://bb/lake"} {
		if _, err := s.key(loc); err == nil {
			t.Errorf("key(%q) accepted", loc)
		}
	}
}

// TestOpenWithoutRegion: without a region the error says how to give one, not the SDK's
// endpoint resolution message.
func TestOpenWithoutRegion(t *testing.T) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	_, err := Open(context.Background(), "s3://b/p", awsx.AWS{})
	if err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("error %v, want one that names AWS_REGION", err)
	}
}
