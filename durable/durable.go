// Package durable writes files that survive a crash whole. A file is written to a temporary
// file in its own directory, fsynced, renamed over its name, and the directory fsynced: after
// a crash the name holds the old content or the new one, never a mix, and once Commit (or
// WriteFile) returns the new content is on stable storage. SyncDir makes a directory's entries
// (files created, renamed or removed in it) durable, for journals that append to a file of
// their own. Lock serializes read-modify-write cycles of a file between goroutines and
// processes.
//
// A crash during a write may leave its temporary file, named <name>.<random>.tmp, next to the
// file; a caller that lists its directory skips or removes names ending in .tmp.
//
// The package imports nothing of osprey's, so that every package may use it, lake included.
package durable

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// TempSuffix ends the name of every temporary file of the package.
const TempSuffix = ".tmp"

// File is a file being written to replace the file at a path: writes go to a temporary file in
// the same directory until Commit or Replace puts it in place. Close without either abandons it.
type File struct {
	*os.File
	path string
	done bool
}

// Create starts a replacement of the file at path, with mode perm (less the umask) if it is
// new. The caller writes through the File, then calls Commit, or Close to abandon it;
// `defer f.Close()` after Create is always right.
func Create(path string, perm fs.FileMode) (*File, error) {
	for range 10 {
		var r [6]byte
		rand.Read(r[:])
		tmp := path + "." + hex.EncodeToString(r[:]) + TempSuffix
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &File{File: f, path: path}, nil
	}
	return nil, fmt.Errorf("create a temporary file for %s: names taken", path)
}

// Commit puts the file in place durably: it fsyncs the file, closes it, renames it over the
// path and fsyncs the directory. On error the temporary file is removed and the path keeps
// its old content (or, if only the directory sync failed, the new content, not yet durable).
func (f *File) Commit() error {
	if err := f.Replace(); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(f.path))
}

// Replace is Commit without the directory sync, for a caller that replaces several files of
// one directory and then syncs it once (SyncDir): until then, a crash may bring back the old
// file.
func (f *File) Replace() error {
	if f.done {
		return fmt.Errorf("replace %s: already committed or closed", f.path)
	}
	f.done = true
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.File.Name(), f.path)
	}
	if err != nil {
		os.Remove(f.File.Name())
		return fmt.Errorf("replace %s: %w", f.path, err)
	}
	return nil
}

// Close abandons the file unless it was committed: the temporary file is closed and removed.
// After Commit or Replace it does nothing.
func (f *File) Close() error {
	if f.done {
		return nil
	}
	f.done = true
	return errors.Join(f.File.Close(), os.Remove(f.File.Name()))
}

// WriteFile replaces the file at path by data, atomically and durably (see Commit); perm is
// the mode of a new file, less the umask.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return f.Commit()
}

// SyncDir fsyncs a directory, making durable the entries created, renamed or removed in it.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// SyncFS flushes the whole file system holding path to stable storage (syncfs): one call makes
// durable every file and directory entry written there, where an fsync each would cost
// milliseconds apiece.
func SyncFS(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	return errors.Join(unix.Syncfs(int(d.Fd())), d.Close())
}

// LockSuffix ends the name of the lock file Lock takes for a path.
const LockSuffix = ".lock"

// Lock takes an exclusive lock for a read-modify-write of the file at path: an flock on
// path+".lock", created (empty, mode 0600) if missing. It waits while another process, or
// another Lock of this process, holds the lock. unlock releases it. Only callers that take the
// lock are excluded: readers need none, since the file is replaced whole.
func Lock(path string) (unlock func() error, err error) {
	name := path + LockSuffix
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f.Close, nil
}
