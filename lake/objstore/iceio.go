package objstore

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/url"
	"path"
	"strings"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
)

// iceberg-go reaches files of s3:// locations through the store opened for their bucket.
func init() {
	icebergio.Register(Scheme, func(_ context.Context, u *url.URL, _ map[string]string) (icebergio.IO, error) {
		s, err := storeOf(u.String())
		if err != nil {
			return nil, err
		}
		return s.IO(), nil
	})
}

// IO returns the store as iceberg-go's file IO. Its calls have no context of their own: each
// is bounded by ioTimeout.
func (s *Store) IO() icebergio.IO { return iceIO{s} }

const ioTimeout = 2 * time.Minute

type iceIO struct{ s *Store }

var (
	_ icebergio.ReadFileIO      = iceIO{}
	_ icebergio.WriteFileIO     = iceIO{}
	_ icebergio.ListableIO      = iceIO{}
	_ icebergio.BulkRemovableIO = iceIO{}
	_ icebergio.StatIO          = iceIO{}
)

func ctxIO() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), ioTimeout)
}

// Open reads the whole object: iceberg-go opens metadata files, manifest lists and
// manifests, which it reads whole.
func (o iceIO) Open(name string) (icebergio.File, error) {
	b, err := o.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(b), name: name, size: int64(len(b))}, nil
}

func (o iceIO) ReadFile(name string) ([]byte, error) {
	ctx, cancel := ctxIO()
	defer cancel()
	return o.s.ReadFile(ctx, name)
}

func (o iceIO) Remove(name string) error {
	ctx, cancel := ctxIO()
	defer cancel()
	_, err := o.s.Delete(ctx, []string{name})
	return err
}

func (o iceIO) DeleteFiles(ctx context.Context, paths []string) ([]string, error) {
	return o.s.Delete(ctx, paths)
}

func (o iceIO) WriteFile(name string, p []byte) error {
	ctx, cancel := ctxIO()
	defer cancel()
	return o.s.PutBytes(ctx, name, p)
}

// Create returns a writer that buffers the file and puts it on Close.
func (o iceIO) Create(name string) (icebergio.FileWriter, error) {
	return &putWriter{io: o, name: name}, nil
}

func (o iceIO) Stat(name string) (fs.FileInfo, error) {
	ctx, cancel := ctxIO()
	defer cancel()
	obj, err := o.s.Stat(ctx, name)
	if err != nil {
		return nil, err
	}
	return objInfo(obj), nil
}

// WalkDir calls fn for every object under root, as files: object stores have no
// directories.
func (o iceIO) WalkDir(root string, fn fs.WalkDirFunc) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	prefix := strings.TrimSuffix(root, "/") + "/"
	return o.s.Walk(ctx, prefix, func(obj Object) error {
		err := fn(obj.Location, fs.FileInfoToDirEntry(objInfo(obj)), nil)
		if err == fs.SkipDir || err == fs.SkipAll {
			return nil
		}
		return err
	})
}

type putWriter struct {
	io   iceIO
	name string
	buf  bytes.Buffer
}

func (w *putWriter) Write(p []byte) (int, error)         { return w.buf.Write(p) }
func (w *putWriter) ReadFrom(r io.Reader) (int64, error) { return w.buf.ReadFrom(r) }
func (w *putWriter) Close() error                        { return w.io.WriteFile(w.name, w.buf.Bytes()) }
func (f *memFile) Stat() (fs.FileInfo, error) {
	return objInfo(Object{Location: f.name, Size: f.size}), nil
}
func (f *memFile) Close() error { return nil }
func (f *memFile) ReadDir(int) ([]fs.DirEntry, error) {
	return nil, &fs.PathError{Op: "readdir", Path: f.name, Err: fs.ErrInvalid}
}
func objInfo(o Object) fs.FileInfo { return info{o} }
func (i info) Name() string        { return path.Base(i.o.Location) }
func (i info) Size() int64         { return i.o.Size }
func (i info) Mode() fs.FileMode   { return 0o444 }
func (i info) ModTime() time.Time  { return i.o.Modified }
func (i info) IsDir() bool         { return false }
func (i info) Sys() any            { return nil }

type memFile struct {
	*bytes.Reader
	name string
	size int64
}

type info struct{ o Object }
