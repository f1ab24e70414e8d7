package objcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"
)

// content returns n bytes that depend on key.
func content(key string, n int) []byte {
	var b []byte
	sum := sha256.Sum256([]byte(key))
	for len(b) < n {
		b = append(b, sum[:]...)
		sum = sha256.Sum256(sum[:])
	}
	return b[:n]
}

func sha(b []byte) Checksum {
	sum := sha256.Sum256(b)
	return Checksum{Algorithm: SHA256, Sum: sum[:]}
}

// store is an object store for tests: objects of 100 bytes by default, and the number of
// times each was fetched.
type store struct {
	mu      sync.Mutex
	fetches map[string]int
}

func (s *store) fetch(key string, body []byte) Fetch {
	return func(ctx context.Context, w io.Writer) (Checksum, error) {
		s.mu.Lock()
		if s.fetches == nil {
			s.fetches = map[string]int{}
		}
		s.fetches[key]++
		s.mu.Unlock()
		_, err := w.Write(body)
		return sha(body), err
	}
}

func (s *store) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches[key]
}

// clock returns a time one second later at each call, from 2100 on.
func clock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func open(t *testing.T, dir string, limit int64) *Cache {
	t.Helper()
	c, err := Open(dir, limit)
	if err != nil {
		t.Fatal(err)
	}
	c.now = clock()
	t.Cleanup(func() { c.Close() })
	return c
}

// get gets key (100 bytes unless size says otherwise) and checks the file's content.
func get(t *testing.T, c *Cache, s *store, key string) (string, func()) {
	t.Helper()
	body := content(key, 100)
	path, release, err := c.Get(t.Context(), key, int64(len(body)), s.fetch(key, body))
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("Get %s: the file holds %q, want %q", key, got, body)
	}
	return path, release
}

func cached(t *testing.T, c *Cache, key string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(c.Dir(), Name(key)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// names lists the directory, the eviction lock left out.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != lockName {
			names = append(names, e.Name())
		}
	}
	return names
}

func key(name string) string {
	return "s3://bucket/lake/panther_logs/aws_cloudtrail/year=2026/month=12/day=01/" + name + ".parquet"
}

func TestHitAndMiss(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	var s store
	path, release := get(t, c, &s, key("a"))
	release()
	release() // a second call does nothing
	path2, release := get(t, c, &s, key("a"))
	release()
	if path2 != path {
		t.Errorf("second Get: path %s, want %s", path2, path)
	}
	get(t, c, &s, key("b"))

	if got := s.count(key("a")); got != 1 {
		t.Errorf("a fetched %d times, want 1", got)
	}
	st := c.Stats()
	if st.Hits != 1 || st.Misses != 2 || st.BytesDownloaded != 200 || st.Bytes != 200 || st.Unverified != 0 {
		t.Errorf("stats %+v, want 1 hit, 2 misses, 200 bytes downloaded and cached, none unverified", st)
	}
	if st.PinnedFiles != 1 || st.PinnedBytes != 100 {
		t.Errorf("stats %+v, want b pinned (100 bytes)", st)
	}
	if !strings.HasSuffix(path, "-a.parquet") || filepath.Dir(path) != c.Dir() {
		t.Errorf("path %s: want a file of %s ending in -a.parquet", path, c.Dir())
	}

	// Another Cache on the directory (as another process would) finds the file.
	c2 := open(t, c.Dir(), 1<<20)
	get(t, c2, &s, key("a"))
	if st := c2.Stats(); st.Hits != 1 || st.Misses != 0 || st.Bytes != 200 {
		t.Errorf("second cache: stats %+v, want 1 hit, 200 bytes", st)
	}
}

// A download whose bytes do not match what the store says caches nothing.
func TestRejected(t *testing.T) {
	body := content("x", 100)
	wrong := sha(append([]byte{}, body[:99]...))
	cases := []struct {
		name  string
		size  int64
		fetch Fetch
		want  error
	}{
		{"checksum", 100, func(ctx context.Context, w io.Writer) (Checksum, error) {
			_, err := w.Write(body)
			return wrong, err
		}, ErrChecksum},
		{"corrupted on the way", 100, func(ctx context.Context, w io.Writer) (Checksum, error) {
			bad := bytes.Clone(body)
			bad[50] ^= 1
			_, err := w.Write(bad)
			return sha(body), err
		}, ErrChecksum},
		{"short", 101, func(ctx context.Context, w io.Writer) (Checksum, error) {
			_, err := w.Write(body)
			return sha(body), err
		}, ErrSize},
		{"long", 99, func(ctx context.Context, w io.Writer) (Checksum, error) {
			_, err := w.Write(body)
			return sha(body), err
		}, ErrSize},
		{"unknown algorithm", 100, func(ctx context.Context, w io.Writer) (Checksum, error) {
			_, err := w.Write(body)
			return Checksum{Algorithm: "sha3", Sum: []byte{1}}, err
		}, ErrAlgorithm},
		{"fetch fails halfway", 100, func(ctx context.Context, w io.Writer) (Checksum, error) {
			w.Write(body[:50])
			return Checksum{}, io.ErrUnexpectedEOF
		}, io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, t.TempDir(), 1<<20)
			_, _, err := c.Get(t.Context(), key("x"), tc.size, tc.fetch)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Get: %v, want %v", err, tc.want)
			}
			if got := names(t, c.Dir()); len(got) != 0 {
				t.Errorf("directory holds %q, want nothing", got)
			}
			// The next Get downloads again.
			var s store
			get(t, c, &s, key("x"))
			if st := c.Stats(); st.Misses != 2 || st.Hits != 0 {
				t.Errorf("stats %+v, want 2 misses", st)
			}
		})
	}
}

// Every algorithm S3 reports is verified, from S3's encoding; standard check values of
// "123456789" pin the CRCs' parameters.
func TestChecksums(t *testing.T) {
	data := []byte("123456789")
	be32 := func(v uint32) string { return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, v)) }
	be64 := func(v uint64) string { return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, v)) }
	cases := []struct {
		a     Algorithm
		value string
	}{
		{CRC32, be32(0xcbf43926)},
		{CRC32C, be32(0xe3069283)},
		{CRC64NVME, be64(0xae8b14860a799888)},
		{SHA256, base64.StdEncoding.EncodeToString(sha(data).Sum)},
		{SHA1, "98O8HYCOBHMq32eZZczDTKeuNEE="},
		{MD5, "JfnnlDI7RTiF9RgfG2JNCw=="},
	}
	c := open(t, t.TempDir(), 1<<20)
	for _, tc := range cases {
		t.Run(string(tc.a), func(t *testing.T) {
			sum, err := S3Checksum(tc.a, tc.value)
			if err != nil {
				t.Fatal(err)
			}
			fetch := func(ctx context.Context, w io.Writer) (Checksum, error) {
				_, err := w.Write(data)
				return sum, err
			}
			path, release, err := c.Get(t.Context(), "s3://b/"+string(tc.a), 9, fetch)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			release()
			os.Remove(path)

			sum.Sum[0] ^= 1
			if _, _, err := c.Get(t.Context(), "s3://b/bad-"+string(tc.a), 9, fetch); !errors.Is(err, ErrChecksum) {
				t.Errorf("Get with a wrong %s: %v, want ErrChecksum", tc.a, err)
			}
		})
	}

	if _, err := S3Checksum(CRC32C, "yZRlqg==-3"); !errors.Is(err, ErrComposite) {
		t.Errorf("S3Checksum of a composite checksum: %v, want ErrComposite", err)
	}
	if _, err := S3Checksum(CRC32C, "AAAA"); err == nil {
		t.Error("S3Checksum of 3 bytes as a CRC32C: no error")
	}
	if got, ok := ETagMD5(`"25f9e794323b453885f5181f1b624d0b"`); !ok || got.String() != "md5:25f9e794323b453885f5181f1b624d0b" {
		t.Errorf("ETagMD5: %v %v", got, ok)
	}
	if _, ok := ETagMD5(`"25f9e794323b453885f5181f1b624d0b-2"`); ok {
		t.Error("ETagMD5 of a multipart ETag: ok")
	}
}

// A Fetch that reports no checksum caches the object once its size is right, and says so.
func TestUnverified(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	body := content("u", 10)
	_, release, err := c.Get(t.Context(), "s3://b/u", 10, func(ctx context.Context, w io.Writer) (Checksum, error) {
		_, err := w.Write(body)
		return Checksum{}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	release()
	if st := c.Stats(); st.Unverified != 1 {
		t.Errorf("stats %+v, want 1 unverified", st)
	}
}

// Files are evicted least recently used first, down to 7/8 of the limit.
func TestEvictionOrder(t *testing.T) {
	c := open(t, t.TempDir(), 800)
	var s store
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		_, release := get(t, c, &s, key(k))
		release()
	}
	if st := c.Stats(); st.Evictions != 0 || st.Bytes != 800 {
		t.Fatalf("at the limit: stats %+v, want no eviction, 800 bytes", st)
	}
	_, release := get(t, c, &s, key("a")) // a is now the most recently used
	release()
	_, release = get(t, c, &s, key("i")) // 900 > 800: evict down to 700 with i
	release()

	for k, want := range map[string]bool{"a": true, "b": false, "c": false, "d": true, "h": true, "i": true} {
		if got := cached(t, c, key(k)); got != want {
			t.Errorf("%s cached: %v, want %v", k, got, want)
		}
	}
	st := c.Stats()
	if st.Evictions != 2 || st.EvictedBytes != 200 || st.Bytes != 700 || st.OverLimit != 0 {
		t.Errorf("stats %+v, want 2 evictions of 200 bytes, 700 bytes left", st)
	}
	if got := len(names(t, c.Dir())); got != 7 {
		t.Errorf("%d files in the directory, want 7", got)
	}
}

// A pinned file is not evicted, even the least recently used; once released it is.
func TestPinnedNotEvicted(t *testing.T) {
	c := open(t, t.TempDir(), 300)
	var s store
	_, releaseA := get(t, c, &s, key("a"))
	for _, k := range []string{"b", "c", "d"} {
		_, release := get(t, c, &s, key(k))
		release()
	}
	if !cached(t, c, key("a")) {
		t.Fatal("a, pinned, was evicted")
	}
	if cached(t, c, key("b")) {
		t.Error("b, unpinned and least recently used after a, was not evicted")
	}
	releaseA()
	// A cache with a lower limit on the directory evicts a, the least recently used, now.
	open(t, c.Dir(), 150)
	if cached(t, c, key("a")) || !cached(t, c, key("d")) {
		t.Error("a, released, was not evicted, or d was")
	}
}

// A working set pinned beyond the limit is still served, and the stats say so.
func TestPinnedOverLimit(t *testing.T) {
	c := open(t, t.TempDir(), 250)
	var s store
	var releases []func()
	for _, k := range []string{"a", "b", "c", "d"} {
		_, release := get(t, c, &s, key(k))
		releases = append(releases, release)
	}
	st := c.Stats()
	if st.Bytes != 400 || st.OverLimit == 0 || st.Evictions != 0 || st.PinnedBytes != 400 {
		t.Errorf("stats %+v, want 400 bytes pinned, over the limit, no eviction", st)
	}
	for _, release := range releases {
		release()
	}
	_, release := get(t, c, &s, key("e"))
	release()
	if st := c.Stats(); st.Bytes > st.Limit {
		t.Errorf("after the release: stats %+v, want at most the limit", st)
	}
}

// Concurrent Gets of one key in a process download it once. In a synctest bubble, Wait
// returns once every Get is blocked: one in its Fetch, the others waiting for it.
func TestConcurrentGetsDownloadOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := open(t, t.TempDir(), 1<<20)
		body := content("one", 1000)
		gate := make(chan struct{})
		var fetches atomic.Int32
		fetch := func(ctx context.Context, w io.Writer) (Checksum, error) {
			fetches.Add(1)
			<-gate
			_, err := w.Write(body)
			return sha(body), err
		}
		const n = 8
		paths := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				path, release, err := c.Get(t.Context(), "s3://b/one", 1000, fetch)
				if err != nil {
					t.Error(err)
					return
				}
				defer release()
				paths[i] = path
				if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, body) {
					t.Errorf("Get %d: %d bytes, %v", i, len(got), err)
				}
			})
		}
		synctest.Wait()
		if got := fetches.Load(); got != 1 {
			t.Errorf("%d fetches running, want 1", got)
		}
		close(gate)
		wg.Wait()
		if got := fetches.Load(); got != 1 {
			t.Errorf("fetched %d times, want 1", got)
		}
		for i := range paths {
			if paths[i] != paths[0] {
				t.Errorf("Get %d: path %s, want %s", i, paths[i], paths[0])
			}
		}
		if st := c.Stats(); st.Misses != 1 || st.Hits != n-1 {
			t.Errorf("stats %+v, want 1 miss, %d hits", st, n-1)
		}
	})
}

// When the Get that downloads is canceled, a Get waiting for it downloads in its stead.
func TestCanceledDownloadRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := open(t, t.TempDir(), 1<<20)
		body := content("one", 10)
		var fetches atomic.Int32
		fetch := func(ctx context.Context, w io.Writer) (Checksum, error) {
			if fetches.Add(1) == 1 {
				<-ctx.Done()
				return Checksum{}, ctx.Err()
			}
			_, err := w.Write(body)
			return sha(body), err
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() {
			_, _, err := c.Get(ctx, "s3://b/one", 10, fetch)
			done <- err
		}()
		synctest.Wait() // the first Get is in its Fetch
		var wg sync.WaitGroup
		wg.Go(func() {
			_, release, err := c.Get(t.Context(), "s3://b/one", 10, fetch)
			if err != nil {
				t.Errorf("the waiting Get: %v", err)
				return
			}
			release()
		})
		synctest.Wait() // the second Get waits for the first
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("the canceled Get: %v, want context.Canceled", err)
		}
		wg.Wait()
		if got := fetches.Load(); got != 2 {
			t.Errorf("fetched %d times, want 2", got)
		}
	})
}

// Open removes the temporary files of downloads no process holds, and only those.
func TestOpenRemovesDeadTemps(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"tmp-dead", "tmp-live", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	live, err := os.Open(filepath.Join(dir, "tmp-live"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := unix.Flock(int(live.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	open(t, dir, 100)
	got := strings.Join(names(t, dir), " ")
	if want := "notes.txt tmp-live"; got != want {
		t.Errorf("after Open: %s, want %s", got, want)
	}
}

func TestClosed(t *testing.T) {
	c := open(t, t.TempDir(), 1000)
	var s store
	_, release := get(t, c, &s, key("a"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	release()
	if _, _, err := c.Get(t.Context(), key("a"), 100, s.fetch(key("a"), content(key("a"), 100))); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
}
