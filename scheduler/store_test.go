package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestStores(t *testing.T) {
	stores := map[string]func(t *testing.T) Store{
		"MemStore": func(t *testing.T) Store { return &MemStore{} },
		"FileStore": func(t *testing.T) Store {
			s, err := OpenFileStore(filepath.Join(t.TempDir(), "state", "runs.json"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			if _, ok, err := s.Last("a"); ok || err != nil {
				t.Fatalf("Last on empty store = %v, %v; want not found", ok, err)
			}
			r1 := Run{Name: "a", Scheduled: utc("2024-05-06 10:00:00"), Started: utc("2024-05-06 10:00:01"), Duration: time.Second, Rows: 7}
			r2 := Run{Name: "a", Scheduled: utc("2024-05-06 11:00:00"), Rows: -1, Err: "boom"}
			older := Run{Name: "a", Scheduled: utc("2024-05-06 09:00:00")}
			for _, r := range []Run{r1, r2, older} {
				if err := s.Record(r); err != nil {
					t.Fatal(err)
				}
			}
			got, ok, err := s.Last("a")
			if err != nil || !ok || !sameRun(got, r2) {
				t.Errorf("Last = %+v, %v, %v; want %+v (an older run does not replace a newer one)", got, ok, err, r2)
			}
		})
	}
}

func sameRun(a, b Run) bool {
	return a.Name == b.Name && a.Scheduled.Equal(b.Scheduled) && a.Started.Equal(b.Started) &&
		a.Duration == b.Duration && a.Rows == b.Rows && a.Err == b.Err
}

func TestFileStoreReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "runs.json")
	s, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Run{Name: "detect/ssh", Scheduled: utc("2024-05-06 10:00:00"), Started: utc("2024-05-06 10:00:02"), Duration: 1500 * time.Millisecond, Rows: 3, Err: "x"}
	if err := s.Record(want); err != nil {
		t.Fatal(err)
	}
	s, err = OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, err := s.Last(want.Name); err != nil || !ok || !sameRun(got, want) {
		t.Errorf("after reopen Last = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var runs map[string]Run
	if err := json.Unmarshal(data, &runs); err != nil || len(runs) != 1 {
		t.Errorf("file is not a JSON object of one run (%v):\n%s", err, data)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "runs.json" && e.Name() != "runs.json.lock" {
			t.Errorf("stray file %s", e.Name())
		}
	}
}

func TestFileStoreCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileStore(path); err == nil {
		t.Error("OpenFileStore on a corrupt file: no error")
	}
}

// Two FileStores on one file each reread it under the lock, so neither overwrites the
// other's runs.
func TestFileStoreTwoInstances(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.json")
	const n = 40
	var wg sync.WaitGroup
	for _, prefix := range []string{"a", "b"} {
		s, err := OpenFileStore(path)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for i := range n {
				if err := s.Record(Run{Name: fmt.Sprintf("%s%d", prefix, i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	s, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2*n {
		t.Errorf("%d runs recorded, want %d", len(runs), 2*n)
	}
}

// Two lock acquisitions through separate file descriptors behave like two processes.
func TestLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "job.lock")
	unlock, err := lockFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockFile(path, false); !errors.Is(err, errLocked) {
		t.Fatalf("second lock while held: err = %v, want errLocked", err)
	}
	unlock()
	unlock, err = lockFile(path, false)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock()
}
