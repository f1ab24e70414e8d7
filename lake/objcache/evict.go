package objcache

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// reserve counts a download of size bytes about to start, and runs an eviction pass first if
// the directory would pass the threshold, so that it never holds much more than the limit.
func (c *Cache) reserve(size int64) error {
	c.mu.Lock()
	c.reserved += max(size, 0)
	over := c.stats.Bytes+c.reserved > c.threshold
	c.mu.Unlock()
	if !over {
		return nil
	}
	return c.Trim()
}

// Trim runs an eviction pass now: it reads the directory (the files of every process), and
// removes the least recently used files that no process pins until they sum to at most 7/8
// of the limit, less the downloads in progress here. Get runs it when a download would take
// the cache over its limit; a pass that cannot get under the limit (the rest is pinned) is
// counted in Stats.OverLimit, and the next one waits for another eighth of the limit.
func (c *Cache) Trim() error {
	c.evictMu.Lock()
	defer c.evictMu.Unlock()
	lock, err := os.OpenFile(filepath.Join(c.dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("evict: %w", err)
	}
	defer lock.Close()
	if err := flock(lock, unix.LOCK_EX); err != nil {
		return fmt.Errorf("evict: lock: %w", err)
	}

	files, total, err := c.scan()
	if err != nil {
		return fmt.Errorf("evict: %w", err)
	}
	c.mu.Lock()
	target := c.limit - c.slack - c.reserved
	c.mu.Unlock()
	var evicted, evictedBytes int64
	for _, fl := range files {
		if total <= target {
			break
		}
		c.mu.Lock()
		busy := c.pins[fl.name] != nil || c.inflight[fl.name] != nil // pinned, or being published
		c.mu.Unlock()
		if busy {
			continue
		}
		removed, err := c.remove(fl.name)
		if err != nil {
			return fmt.Errorf("evict: %w", err)
		}
		if removed {
			total -= fl.size
			evicted++
			evictedBytes += fl.size
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.stats
	s.Passes++
	s.Evictions += evicted
	s.EvictedBytes += evictedBytes
	s.Bytes = total
	c.threshold = c.limit
	if total+c.reserved > c.limit {
		s.OverLimit++
		c.threshold = total + c.reserved + max(c.slack, 1)
	}
	return nil
}

type cachedFile struct {
	name  string
	size  int64
	mtime time.Time
}

// scan lists the cached files, least recently used first, and sums their sizes.
func (c *Cache) scan() ([]cachedFile, int64, error) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, 0, err
	}
	var files []cachedFile
	var total int64
	for _, e := range entries {
		if !e.Type().IsRegular() || !isObjectName(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) { // evicted by another process meanwhile
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		files = append(files, cachedFile{name: e.Name(), size: fi.Size(), mtime: fi.ModTime()})
		total += fi.Size()
	}
	slices.SortFunc(files, func(a, b cachedFile) int {
		return cmp.Or(a.mtime.Compare(b.mtime), strings.Compare(a.name, b.name))
	})
	return files, total, nil
}

// remove removes a cached file if no process pins it: it takes an exclusive flock without
// waiting (a pin holds a shared one) and checks that the name still holds the inode locked.
func (c *Cache) remove(name string) (bool, error) {
	path := filepath.Join(c.dir, name)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	switch err := flock(f, unix.LOCK_EX|unix.LOCK_NB); {
	case errors.Is(err, unix.EWOULDBLOCK):
		return false, nil // pinned, or being published, by another process
	case err != nil:
		return false, fmt.Errorf("lock %s: %w", name, err)
	}
	if same, err := sameFile(f, path); err != nil || !same {
		return false, err
	}
	// Published files are never replaced, and only a holder of this lock removes the name:
	// it names the inode locked until the remove.
	if err := os.Remove(path); err != nil {
		return false, err
	}
	return true, nil
}

// removeTemps removes the temporary files no live download holds: those of crashed processes.
func (c *Cache) removeTemps() error {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		path := filepath.Join(c.dir, e.Name())
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			err = os.Remove(path)
		} else if errors.Is(err, unix.EWOULDBLOCK) {
			err = nil // a download in progress
		}
		f.Close()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove temporary file %s: %w", e.Name(), err)
		}
	}
	return nil
}
