package objcache

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkName checks what a file name derived from any key must be.
func checkName(t *testing.T, key string) {
	t.Helper()
	name := Name(key)
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00\\") {
		t.Fatalf("Name(%q) = %q", key, name)
	}
	if len(name) > hashLen+1+tailMax {
		t.Fatalf("Name(%q) has %d bytes", key, len(name))
	}
	if !isObjectName(name) {
		t.Fatalf("Name(%q) = %q, which an eviction pass would not count", key, name)
	}
	if dir := filepath.Join("/cache", name); filepath.Dir(dir) != "/cache" {
		t.Fatalf("Name(%q) = %q leaves the directory", key, name)
	}
	if isObjectName(tempPrefix+name) || isObjectName(lockName) {
		t.Fatal("a temporary file or the lock would be taken for an object")
	}
}

func TestName(t *testing.T) {
	keys := []string{
		"",
		"/",
		"..",
		"../../etc/passwd",
		"s3://b/../../../../etc/passwd",
		"s3://b/a/..",
		"s3://b/x\x00.parquet",
		"s3://b/\xff\xfe.parquet",
		"s3://b/a\\..\\..\\x",
		"s3://b/" + strings.Repeat("x", 5000) + ".parquet",
		"s3://bucket/lake/panther_logs/aws_cloudtrail/year=2026/month=12/day=01/20261201T000000Z-0193a2b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b.parquet",
	}
	seen := map[string]string{}
	for _, k := range keys {
		checkName(t, k)
		if other, ok := seen[Name(k)]; ok {
			t.Errorf("keys %q and %q have one name", k, other)
		}
		seen[Name(k)] = k
	}
	if got := Name(keys[len(keys)-1]); !strings.HasSuffix(got, "-0193a2b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b.parquet") {
		t.Errorf("Name of a data file: %s, want its uuid and extension kept", got)
	}
	if got := Name(keys[9]); !strings.HasSuffix(got, ".parquet") {
		t.Errorf("Name of a long key: %s, want .parquet kept", got)
	}

	// Getting every one of them writes files in the cache directory, and nowhere else.
	parent := t.TempDir()
	dir := filepath.Join(parent, "cache")
	c := open(t, dir, 1<<20)
	for _, k := range keys {
		_, release, err := c.Get(t.Context(), k, 1, func(ctx context.Context, w io.Writer) (Checksum, error) {
			_, err := w.Write([]byte{1})
			return Checksum{}, err
		})
		if err != nil {
			t.Fatalf("Get %q: %v", k, err)
		}
		release()
	}
	if got := len(names(t, dir)); got != len(keys) {
		t.Errorf("%d files in the cache, want %d", got, len(keys))
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("%d entries next to the cache directory, want none", len(entries)-1)
	}
}

func FuzzName(f *testing.F) {
	f.Add("s3://b/../x.parquet")
	f.Add("a\x00/..")
	f.Add(strings.Repeat("/", 100))
	f.Fuzz(func(t *testing.T, key string) {
		checkName(t, key)
	})
}
