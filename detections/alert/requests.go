package alert

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// A resolution asked for while another process holds the store waits in requests.jsonl until
// that process takes it (Prepare does, and TakeRequests). The file has a lock of its own, held
// only while it is read or appended to.

type request struct {
	ID string    `json:"id"`
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// Resolve marks an alert of the store in dir resolved by who, from any process: directly when
// no process holds the store (opened with committed, see Open), else through its requests
// file, which the process holding the store takes at its next Prepare.
func Resolve(dir, id, by string, committed CommittedEpoch) error {
	s, err := Open(dir, committed)
	if err == nil {
		defer s.Close()
		return s.Resolve(id, by)
	}
	if !errors.Is(err, ErrLocked) {
		return err
	}
	return RequestResolve(dir, id, by)
}

// RequestResolve asks the process holding the store in dir to resolve an alert (see Resolve).
func RequestResolve(dir, id, by string) error {
	alerts, err := ReadAlerts(dir)
	if err != nil {
		return err
	}
	found := false
	for _, a := range alerts {
		found = found || a.AlertID == id
	}
	if !found {
		return fmt.Errorf("no alert %s", id)
	}
	return withRequests(dir, func(f *os.File) error {
		line, err := json.Marshal(request{ID: id, By: by, At: time.Now().UTC()})
		if err != nil {
			return err
		}
		if _, err := f.Seek(0, 2); err != nil {
			return err
		}
		if _, err := f.Write(append(line, '\n')); err != nil {
			return err
		}
		return f.Sync()
	})
}

// withRequests runs fn with the requests file open and locked.
func withRequests(dir string, fn func(*os.File) error) error {
	f, err := os.OpenFile(filepath.Join(dir, "requests.jsonl"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	return fn(f)
}

func readRequests(dir string) ([]request, error) {
	f, err := os.Open(filepath.Join(dir, "requests.jsonl"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseRequests(f)
}

func parseRequests(f *os.File) ([]request, error) {
	var out []request
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r request
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.ID != "" {
			out = append(out, r)
		}
	}
	return out, sc.Err()
}

// TakeRequests applies the resolutions other processes asked for.
func (s *Store) TakeRequests() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeRequestsLocked()
}

func (s *Store) takeRequests() error { return s.TakeRequests() }

func (s *Store) takeRequestsLocked() error {
	info, err := os.Stat(filepath.Join(s.dir, "requests.jsonl"))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && info.Size() == 0) {
		return nil
	}
	return withRequests(s.dir, func(f *os.File) error {
		reqs, err := parseRequests(f)
		if err != nil {
			return err
		}
		for _, r := range reqs {
			if s.st.Alerts[r.ID] == nil {
				continue
			}
			if err := s.resolveLocked(r.ID, r.By, r.At); err != nil {
				return err
			}
		}
		if err := f.Truncate(0); err != nil {
			return err
		}
		return f.Sync()
	})
}
