package s3src

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/source/s3src/s3test"
)

// ingested records what Backfill hands on, by object key (the Ingester seam).
type ingested struct {
	mu   sync.Mutex
	recs map[string][]string
}

func (g *ingested) IngestObjectRecords(ctx context.Context, src *ingest.Source, name string, file batch.SourceFile, records [][]byte, done *sync.WaitGroup) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range records {
		g.recs[file.Key] = append(g.recs[file.Key], string(r))
	}
	return nil
}

// TestBackfillManifest stops a backfill at its second commit, as a crash before the lake flush
// would: the rerun ingests the objects of the uncommitted batch again (their rows were never
// committed) and not those of the first.
func TestBackfillManifest(t *testing.T) {
	srv := s3test.New()
	defer srv.Close()
	for i := range 6 {
		srv.Put("logs", fmt.Sprintf("AWSLogs/%d.json", i), []byte(fmt.Sprintf(`{"Records":[{"i":%d}]}`, i)+"\n"), time.Time{})
	}
	path := filepath.Join(t.TempDir(), "m.manifest")
	router := testRouter()
	run := func(committed int64, failAt int64) (*ingested, int64, error) {
		m, err := OpenManifest(path, committed)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		g := &ingested{recs: map[string][]string{}}
		last := committed
		commit := func(ctx context.Context, b int64) error {
			if b == failAt {
				return errors.New("crash")
			}
			last = b
			return nil
		}
		_, err = Backfill(context.Background(), srv.Client(), router, g, m, commit, BackfillOptions{BatchBytes: 40, Concurrency: 1})
		return g, last, err
	}
	g1, committed, err := run(0, 2)
	if err == nil || committed != 1 {
		t.Fatalf("first run: committed %d, %v", committed, err)
	}
	g2, committed, err := run(committed, -1)
	if err != nil {
		t.Fatal(err)
	}
	keys := func(g *ingested) string {
		var k []string
		for key := range g.recs {
			k = append(k, strings.TrimPrefix(key, "AWSLogs/"))
		}
		sort.Strings(k)
		return strings.Join(k, " ")
	}
	// Batches of 40 bytes: two objects each.
	if a, b := keys(g1), keys(g2); a != "0.json 1.json 2.json 3.json" || b != "2.json 3.json 4.json 5.json" {
		t.Errorf("first run read %q, second %q", a, b)
	}
	_, _, err = run(committed, -1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := OpenManifest(path, committed)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Len() != 6 {
		t.Errorf("manifest holds %d objects, want 6", m.Len())
	}
}
