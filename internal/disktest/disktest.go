// Package disktest gives tests a disk they can fill: a tmpfs of a chosen size mounted for the
// test (tests run as root here and in CI; elsewhere they skip), bind mounts onto it, and a
// file that takes all of its space.
package disktest

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of the given size ("16m") on a new directory for the test, and skips
// the test where mounting is not allowed. The test's cleanup unmounts it, and reports an
// error if something still holds it.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skipf("cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): %v", err)
		}
		t.Fatalf("mount tmpfs: %v", err)
	}
	unmountAtCleanup(t, dir)
	return dir
}

// BindMount mounts the directory src on dst (created if needed) for the test.
func BindMount(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(src, dst, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount %s on %s: %v", src, dst, err)
	}
	unmountAtCleanup(t, dst)
}

// unmountAtCleanup unmounts dir when the test ends. Something still holding it is an error
// of a test that passed; after a failure (a daemon killed, not yet gone) it is detached, so
// that no mount outlives the test either way.
func unmountAtCleanup(t testing.TB, dir string) {
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
			if !t.Failed() {
				t.Errorf("unmount %s: %v", dir, err)
			}
		}
	})
}

// Fill writes a file in dir, chunk bytes at a time, until the file system is full, and
// returns its path: less than chunk bytes stay free.
func Fill(t testing.TB, dir string, chunk int) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, chunk)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return path
		}
	}
}
