package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ospreyhq/osprey/durable"
)

// Run is one finished run of a job.
type Run struct {
	Name      string        `json:"name"`
	Scheduled time.Time     `json:"scheduled"`   // when the run was due
	Started   time.Time     `json:"started"`     // when it started
	Duration  time.Duration `json:"duration_ns"` // how long it took
	Rows      int64         `json:"rows"`        // as reported with SetRows; -1 if not reported
	Err       string        `json:"err,omitempty"`
}

// Store records the last run of each job. Record keeps, for each job, the run with the latest
// Scheduled time: recording an older run does not replace a newer one.
type Store interface {
	Last(name string) (Run, bool, error)
	Record(Run) error
}

func keep(runs map[string]Run, r Run) {
	if old, ok := runs[r.Name]; !ok || !old.Scheduled.After(r.Scheduled) {
		runs[r.Name] = r
	}
}

// MemStore is a Store in memory. The zero MemStore is empty and ready to use.
type MemStore struct {
	mu   sync.Mutex
	runs map[string]Run
}

// Last returns the last recorded run of the job name.
func (m *MemStore) Last(name string) (Run, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[name]
	return r, ok, nil
}

// Record records r.
func (m *MemStore) Record(r Run) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runs == nil {
		m.runs = make(map[string]Run)
	}
	keep(m.runs, r)
	return nil
}

// FileStore is a Store in one JSON file (an object mapping job names to runs). Each Record
// rereads the file and replaces it atomically (temporary file, fsync, rename) while holding an
// exclusive flock on "<path>.lock", so several FileStores on one file, in one process or many,
// do not lose each other's updates. It is safe for concurrent use.
type FileStore struct {
	path string
	mu   sync.Mutex
}

// OpenFileStore returns the FileStore in path, creating its directory if needed. The file is
// created by the first Record.
func OpenFileStore(path string) (*FileStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open run store: %w", err)
	}
	s := &FileStore{path: path}
	if _, err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Last returns the last recorded run of the job name.
func (s *FileStore) Last(name string) (Run, bool, error) {
	runs, err := s.load()
	r, ok := runs[name]
	return r, ok, err
}

// Record records r.
func (s *FileStore) Record(r Run) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lockFile(s.path+".lock", true)
	if err != nil {
		return fmt.Errorf("record run: %w", err)
	}
	defer unlock()
	runs, err := s.load()
	if err != nil {
		return err
	}
	keep(runs, r)
	data, err := json.MarshalIndent(runs, "", "  ")
	if err != nil {
		return fmt.Errorf("record run: %w", err)
	}
	if err := durable.WriteFile(s.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("record run: %w", err)
	}
	return nil
}

func (s *FileStore) load() (map[string]Run, error) {
	runs := make(map[string]Run)
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return runs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read run store: %w", err)
	}
	if err := json.Unmarshal(data, &runs); err != nil {
		return nil, fmt.Errorf("read run store %s: %w", s.path, err)
	}
	return runs, nil
}

// errLocked means a lock file is held by another open file (in this process or another).
var errLocked = errors.New("locked")

// lockFile takes an exclusive flock on path, creating the file if needed. If wait is false and
// the lock is held, it returns errLocked at once. unlock releases the lock.
func lockFile(path string, wait bool) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	for {
		if err = syscall.Flock(int(f.Fd()), how); err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
