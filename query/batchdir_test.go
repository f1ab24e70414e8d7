package query

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestStaleBatchDirs checks that a BatchDB removes the directories of BatchDBs whose process
// died (their lock is free), and leaves those in use alone.
func TestStaleBatchDirs(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	live, err := OpenBatchDB(ctx, BatchOptions{Dir: base})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	stale := filepath.Join(base, batchDirPrefix+"dead")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lock", "panther_logs.x.parquet"} {
		if err := os.WriteFile(filepath.Join(stale, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other, err := OpenBatchDB(ctx, BatchOptions{Dir: base})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale directory is still there: %v", err)
	}
	if _, err := os.Stat(live.dir); err != nil {
		t.Errorf("the directory of a live BatchDB was removed: %v", err)
	}
}
