package objcache

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Errors of the package, for errors.Is.
var (
	// ErrSize: an object's bytes are not as many as its size says (downloaded or cached).
	ErrSize = errors.New("object size differs")
	// ErrChecksum: the bytes written do not have the checksum the store reported.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrAlgorithm: a checksum algorithm the package does not know.
	ErrAlgorithm = errors.New("unknown checksum algorithm")
	// ErrComposite: a multipart upload's composite checksum, not a digest of the content.
	ErrComposite = errors.New("composite checksum")
	// ErrClosed: the Cache was closed.
	ErrClosed = errors.New("cache closed")
)

// maxAttempts bounds the rounds of a Get that keeps losing its object to other processes'
// evictions between the download and the pin.
const maxAttempts = 5

// Fetch writes the whole content of an object to w and returns the checksum the store reports
// for it (the zero Checksum if it reports none). It is called at most once per Get, with the
// Get's context. A Fetch that fails may have written part of the content: nothing is cached.
type Fetch func(ctx context.Context, w io.Writer) (Checksum, error)

// Stats are a Cache's counters since Open, and what it knows of the directory.
type Stats struct {
	Hits            int64 // Gets answered by a file already cached, or fetched by a concurrent Get
	Misses          int64 // Gets that downloaded
	BytesDownloaded int64 // bytes written by Fetch, verified or not
	Rejected        int64 // downloads refused: wrong size or checksum (nothing cached)
	Unverified      int64 // downloads cached whose Fetch reported no checksum (size checked)
	Evictions       int64 // files this Cache removed to keep under the limit
	EvictedBytes    int64
	Passes          int64 // eviction passes (each reads the directory)
	OverLimit       int64 // passes that ended above the limit: the rest was pinned
	Bytes           int64 // bytes of the files in the directory: the last pass's count plus what this Cache added since
	Limit           int64
	PinnedFiles     int   // files this process holds pinned now
	PinnedBytes     int64 // their bytes
}

// Cache is a directory of objects downloaded from an object store, bounded in size. Its methods
// may be called from several goroutines; several processes may open the same directory.
type Cache struct {
	dir   string
	limit int64
	slack int64            // an eviction pass goes down to limit-slack, so passes are rare
	now   func() time.Time // the time a use records (mtime), for the LRU order

	evictMu sync.Mutex // one pass at a time in this process (the flock of lockName between processes)

	mu        sync.Mutex
	closed    bool
	pins      map[string]*pin  // by file name: the files this process pins
	inflight  map[string]*call // by file name: downloads in progress
	reserved  int64            // sizes of the downloads in progress
	threshold int64            // a pass runs when Bytes+reserved exceeds it (>= limit)
	stats     Stats
}

// pin is one process's hold on a cached file: a shared flock on an open descriptor of it,
// shared by every Get of the process until the last release.
type pin struct {
	f    *os.File
	n    int
	size int64
}

// call is a download in progress, which concurrent Gets of the same object wait for.
type call struct {
	done chan struct{}
	err  error
}

// Open opens the cache in dir, created if missing, whose files should not sum to more than
// limit bytes. It removes the temporary files of downloads no live process holds (those of a
// crashed process) and evicts down to the limit.
func Open(dir string, limit int64) (*Cache, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("open object cache %s: limit %d is not positive", dir, limit)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open object cache: %w", err)
	}
	c := &Cache{
		dir:       dir,
		limit:     limit,
		slack:     limit / 8,
		now:       time.Now,
		pins:      map[string]*pin{},
		inflight:  map[string]*call{},
		threshold: limit,
	}
	c.stats.Limit = limit
	if err := c.removeTemps(); err != nil {
		return nil, fmt.Errorf("open object cache %s: %w", dir, err)
	}
	if err := c.Trim(); err != nil {
		return nil, fmt.Errorf("open object cache %s: %w", dir, err)
	}
	return c, nil
}

// Dir returns the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// Path returns where the file of key is (or will be) in the cache.
func (c *Cache) Path(key string) string { return filepath.Join(c.dir, Name(key)) }

// Get returns the path of a local file holding the object at key, whose content is size bytes
// (a negative size: unknown, not checked), downloading it with fetch if it is not cached. The
// file stays pinned, never evicted by any process, until release is called (once; more calls
// do nothing); the caller reads it by path meanwhile and must not modify it.
//
// A download goes to a temporary file in the directory, is checked (size, and the checksum
// fetch reports, read back from the file) and then appears under its name whole. Concurrent
// Gets of one key in a process download once; in several processes each may download, and
// the first file published is the one all use.
func (c *Cache) Get(ctx context.Context, key string, size int64, fetch Fetch) (path string, release func(), err error) {
	name := Name(key)
	path = filepath.Join(c.dir, name)
	for range maxAttempts {
		if err := ctx.Err(); err != nil {
			return "", nil, fmt.Errorf("get %s: %w", key, err)
		}
		ok, err := c.pin(name, path, size)
		if err != nil {
			return "", nil, fmt.Errorf("get %s: %w", key, err)
		}
		if ok {
			c.count(func(s *Stats) { s.Hits++ })
			return path, c.releaser(name), nil
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return "", nil, fmt.Errorf("get %s: %w", key, ErrClosed)
		}
		if cl := c.inflight[name]; cl != nil {
			c.mu.Unlock()
			select {
			case <-cl.done:
			case <-ctx.Done():
				return "", nil, fmt.Errorf("get %s: %w", key, ctx.Err())
			}
			if cl.err != nil && !isCanceled(cl.err) {
				return "", nil, cl.err
			}
			continue // cached now, or the downloading Get was canceled: try again
		}
		cl := &call{done: make(chan struct{})}
		c.inflight[name] = cl
		c.mu.Unlock()

		hit, err := c.fill(ctx, key, name, path, size, fetch)
		c.mu.Lock()
		delete(c.inflight, name)
		c.mu.Unlock()
		cl.err = err
		close(cl.done)
		switch {
		case errors.Is(err, errAgain):
			continue
		case err != nil:
			return "", nil, err
		}
		if hit {
			c.count(func(s *Stats) { s.Hits++ })
		}
		return path, c.releaser(name), nil
	}
	return "", nil, fmt.Errorf("get %s: evicted by other processes %d times before it could be pinned", key, maxAttempts)
}

// errAgain: the file published was evicted before this Get could pin it; Get starts over.
var errAgain = errors.New("published file gone before it was pinned")

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fill downloads the object and pins the file, unless it appeared meanwhile (hit).
func (c *Cache) fill(ctx context.Context, key, name, path string, size int64, fetch Fetch) (hit bool, err error) {
	// A Get of this process may have finished between our first look and our registration.
	if ok, err := c.pin(name, path, size); err != nil || ok {
		if err != nil {
			err = fmt.Errorf("get %s: %w", key, err)
		}
		return ok, err
	}
	c.count(func(s *Stats) { s.Misses++ })
	if err := c.reserve(size); err != nil {
		return false, fmt.Errorf("get %s: %w", key, err)
	}
	published := false
	defer func() {
		c.mu.Lock()
		c.reserved -= max(size, 0)
		c.mu.Unlock()
	}()

	f, tmp, err := c.createTemp()
	if err != nil {
		return false, fmt.Errorf("get %s: %w", key, err)
	}
	defer func() {
		if !published {
			f.Close()
			os.Remove(tmp)
		}
	}()

	w := &limitedWriter{w: f, max: size}
	sum, err := fetch(ctx, w)
	c.count(func(s *Stats) { s.BytesDownloaded += w.n })
	if err != nil {
		return false, fmt.Errorf("fetch %s: %w", key, err)
	}
	if err := c.verify(f, w, size, sum); err != nil {
		c.count(func(s *Stats) { s.Rejected++ })
		return false, fmt.Errorf("fetch %s: %w", key, err)
	}
	if sum.IsZero() {
		c.count(func(s *Stats) { s.Unverified++ })
	}
	now := c.now()
	if err := os.Chtimes(tmp, now, now); err != nil {
		return false, fmt.Errorf("get %s: %w", key, err)
	}

	// Publish without replacing: a file under the name is whole and verified, and may be
	// pinned by another process on its inode, which a rename over it would unlink.
	err = os.Link(tmp, path)
	if errors.Is(err, fs.ErrExist) {
		// Another process published it first: use theirs.
		ok, err := c.pin(name, path, size)
		switch {
		case err != nil:
			return false, fmt.Errorf("get %s: %w", key, err)
		case !ok: // and evicted already
			return false, errAgain
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get %s: publish: %w", key, err)
	}
	published = true
	os.Remove(tmp)
	c.count(func(s *Stats) { s.Bytes += w.n })
	// Hold the file as a pin: the exclusive lock taken at creation becomes shared. Linux
	// does not convert atomically, so another process may evict the file in between; then it
	// is not ours any more, and Get starts over.
	if err := flock(f, unix.LOCK_SH); err != nil {
		f.Close()
		return false, fmt.Errorf("get %s: pin: %w", key, err)
	}
	if same, err := sameFile(f, path); err != nil || !same {
		f.Close()
		if err != nil {
			return false, fmt.Errorf("get %s: pin: %w", key, err)
		}
		return false, errAgain
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		f.Close()
		return false, fmt.Errorf("get %s: %w", key, ErrClosed)
	}
	if p := c.pins[name]; p != nil { // pinned by a Get of ours since the link
		p.n++
		c.mu.Unlock()
		f.Close()
	} else {
		c.pins[name] = &pin{f: f, n: 1, size: w.n}
		c.mu.Unlock()
	}
	return false, nil
}

// verify checks what was written: its size, and its checksum read back from the file.
func (c *Cache) verify(f *os.File, w *limitedWriter, size int64, sum Checksum) error {
	if w.over || size >= 0 && w.n != size {
		n := fmt.Sprint(w.n)
		if w.over {
			n = "more than " + n
		}
		return fmt.Errorf("%s bytes, want %d: %w", n, size, ErrSize)
	}
	if sum.IsZero() {
		return nil
	}
	h, err := sum.Algorithm.new()
	if err != nil {
		return err
	}
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, w.n)); err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if !sum.matches(h) {
		return fmt.Errorf("store says %s, the bytes have %x: %w", sum, h.Sum(nil), ErrChecksum)
	}
	return nil
}

// limitedWriter counts what it writes and refuses to write past max (if max >= 0), so a
// store that sends more than the object's size cannot fill the disk.
type limitedWriter struct {
	w    io.Writer
	n    int64
	max  int64
	over bool
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.max >= 0 && l.n+int64(len(p)) > l.max {
		l.over = true
		return 0, fmt.Errorf("more than %d bytes: %w", l.max, ErrSize)
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

// createTemp creates a temporary file in the directory, exclusively flocked for as long as it
// lives so that removeTemps leaves it alone.
func (c *Cache) createTemp() (*os.File, string, error) {
	for range 10 {
		var r [8]byte
		rand.Read(r[:])
		tmp := filepath.Join(c.dir, tempPrefix+hex.EncodeToString(r[:]))
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("create temporary file: %w", err)
		}
		if err := flock(f, unix.LOCK_EX); err != nil {
			f.Close()
			os.Remove(tmp)
			return nil, "", fmt.Errorf("lock temporary file: %w", err)
		}
		// Another process's removeTemps may have taken the file between its creation and our
		// lock, and removed it.
		if fi, err := f.Stat(); err != nil || nlink(fi) == 0 {
			f.Close()
			continue
		}
		return f, tmp, nil
	}
	return nil, "", errors.New("create temporary file: names taken")
}

// pin pins the cached file at path if there is one: it takes a shared flock on it and checks
// that the name still holds the inode locked (an eviction may have removed it meanwhile).
func (c *Cache) pin(name, path string, size int64) (bool, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false, ErrClosed
	}
	if p := c.pins[name]; p != nil {
		if size >= 0 && p.size != size {
			c.mu.Unlock()
			return false, fmt.Errorf("cached %s holds %d bytes, want %d: %w", name, p.size, size, ErrSize)
		}
		p.n++
		c.mu.Unlock()
		c.touch(path)
		return true, nil
	}
	c.mu.Unlock()

	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := flock(f, unix.LOCK_SH); err != nil {
		f.Close()
		return false, fmt.Errorf("pin %s: %w", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return false, err
	}
	if same, err := sameInode(fi, path); err != nil || !same {
		f.Close()
		return false, err
	}
	if size >= 0 && fi.Size() != size {
		f.Close()
		return false, fmt.Errorf("cached %s holds %d bytes, want %d: %w", name, fi.Size(), size, ErrSize)
	}
	c.mu.Lock()
	if p := c.pins[name]; p != nil { // another Get of ours pinned it meanwhile
		p.n++
		c.mu.Unlock()
		f.Close()
	} else {
		c.pins[name] = &pin{f: f, n: 1, size: fi.Size()}
		c.mu.Unlock()
	}
	c.touch(path)
	return true, nil
}

// touch records a use of the file, for the order of eviction. A failure only makes the file
// look older than it is.
func (c *Cache) touch(path string) {
	now := c.now()
	os.Chtimes(path, now, now)
}

func (c *Cache) releaser(name string) func() {
	var once sync.Once
	return func() { once.Do(func() { c.unpin(name) }) }
}

func (c *Cache) unpin(name string) {
	c.mu.Lock()
	p := c.pins[name]
	if p == nil { // closed
		c.mu.Unlock()
		return
	}
	p.n--
	if p.n > 0 {
		c.mu.Unlock()
		return
	}
	delete(c.pins, name)
	// The file may be evicted now: let the next download run a pass if the cache is over.
	c.threshold = c.limit
	c.mu.Unlock()
	p.f.Close()
}

// sameFile reports whether path names the file open as f (an eviction may have removed it,
// and another download published a new file under the name).
func sameFile(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	return sameInode(fi, path)
}

// sameInode reports whether path names the file whose FileInfo (from Stat of an open File)
// is fi.
func sameInode(fi fs.FileInfo, path string) (bool, error) {
	pi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fi, pi) && nlink(fi) > 0, nil
}

func nlink(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// flock takes or converts a lock on f. It goes through SyscallConn: f.Fd would put the
// descriptor in blocking mode, a syscall more on the path of every hit.
func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		for {
			if ferr = unix.Flock(int(fd), how); ferr != unix.EINTR {
				return
			}
		}
	})
	return cmp.Or(err, ferr)
}

func (c *Cache) count(f func(*Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.PinnedFiles = len(c.pins)
	for _, p := range c.pins {
		s.PinnedBytes += p.size
	}
	return s
}

// Close releases every pin this Cache holds; the paths Get returned may be evicted from then
// on. Get fails after Close.
func (c *Cache) Close() error {
	c.mu.Lock()
	pins := c.pins
	c.pins = map[string]*pin{}
	c.closed = true
	c.mu.Unlock()
	var errs []error
	for _, p := range pins {
		errs = append(errs, p.f.Close())
	}
	return errors.Join(errs...)
}
