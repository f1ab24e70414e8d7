package lake

import (
	"sync"
	"testing"
)

// TestNewWriterConcurrent: processes that start writers on one lake at once (osprey ingest,
// lake compact and schedule run while serve runs) each clean the tmp directories of writers
// that are gone. None takes a starting writer for one that is gone: every writer starts, and
// closes.
func TestNewWriterConcurrent(t *testing.T) {
	dir := t.TempDir()
	const starters, writers = 6, 150
	errs := make(chan error, starters*writers)
	var wg sync.WaitGroup
	for range starters {
		wg.Go(func() {
			l, err := Open(dir) // a Lake of its own, as another process has
			if err != nil {
				errs <- err
				return
			}
			for range writers {
				w, err := l.NewWriter(WriterOptions{})
				if err != nil {
					errs <- err
					continue
				}
				if err := w.Close(); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
