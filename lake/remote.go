package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ospreyhq/osprey/durable"
	"github.com/ospreyhq/osprey/lake/iceberg"
	"github.com/ospreyhq/osprey/lake/objcache"
	"github.com/ospreyhq/osprey/lake/objstore"
)

// DefaultStateDir returns the default local directory of a lake at location s3://bucket/prefix:
// $XDG_STATE_HOME/osprey/s3/<bucket>/<prefix>, or ~/.local/state/osprey/s3/<bucket>/<prefix>.
func DefaultStateDir(location string) (string, error) {
	bucket, prefix, err := objstore.Parse(location)
	if err != nil {
		return "", err
	}
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("the local directory of the lake %s: %w (set --state)", location, err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "osprey", "s3", bucket, filepath.FromSlash(prefix)), nil
}

// Options returns where the lake is.
func (l *Lake) Options() Options { return l.opts }

// DefaultCacheBytes is the default size limit of a lake's local cache of its object store's
// data files: OSPREY_CACHE_BYTES sets another.
const DefaultCacheBytes = 8 << 30

// CacheDir returns the directory of the lake's local cache of its object store's data files,
// which queries read (DuckDB here cannot read S3).
func (l *Lake) CacheDir() string { return filepath.Join(l.dir, "_cache") }

// OpenCache opens the lake's local cache of data files, bounded to limit bytes (0:
// OSPREY_CACHE_BYTES, or DefaultCacheBytes). Several processes may share it.
func (l *Lake) OpenCache(limit int64) (*objcache.Cache, error) {
	if limit <= 0 {
		limit = DefaultCacheBytes
		if v, err := strconv.ParseInt(os.Getenv("OSPREY_CACHE_BYTES"), 10, 64); err == nil && v > 0 {
			limit = v
		}
	}
	return objcache.Open(l.CacheDir(), limit)
}

// Fetch returns the function that downloads a data file at loc from the lake's object store
// into the cache, with the checksum the store keeps of it.
func (l *Lake) Fetch(loc string) objcache.Fetch {
	return func(ctx context.Context, w io.Writer) (objcache.Checksum, error) {
		got, err := l.store.Get(ctx, loc, w)
		if err != nil || got.SHA256 == "" {
			return objcache.Checksum{}, err
		}
		return objcache.S3Checksum(objcache.SHA256, got.SHA256)
	}
}

// fetchParallel is how many files FetchFiles fetches at once.
const fetchParallel = 8

// FetchFiles brings data files of the lake's object store (their sizes by location) into the
// cache c, a few at once, pinned until release is called.
func (l *Lake) FetchFiles(ctx context.Context, c *objcache.Cache, sizes map[string]int64) (release func(), err error) {
	locs := make([]string, 0, len(sizes))
	for loc := range sizes {
		locs = append(locs, loc)
	}
	releases := make([]func(), len(locs))
	errs := forEach(len(locs), fetchParallel, func(i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		_, releases[i], err = c.Get(ctx, locs[i], sizes[locs[i]], l.Fetch(locs[i]))
		return err
	})
	release = func() {
		for _, r := range releases {
			if r != nil {
				r()
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// remoteSchemaFile is where the schema file of a table of a lake in an object store is kept in
// the store, for the other machines on the lake.
func (l *Lake) remoteSchemaFile(db, table string) string {
	return l.store.Location("_osprey/schemas/" + db + "/" + table + "/schema.parquet")
}

// SyncSchemas brings the schema files of the tables another machine created into the lake's
// directory: queries read a table's columns from its schema file, and writers compare their
// batches' columns with it. It does nothing for a lake in its own directory, and leaves the
// schema files this directory has alone.
func (l *Lake) SyncSchemas(ctx context.Context, tables []iceberg.Pointer) error {
	if l.store == nil {
		return nil
	}
	for _, t := range tables {
		path := l.SchemaFile(t.DB, t.Table)
		if _, err := os.Stat(path); err == nil || CheckName(t.DB) != nil || CheckName(t.Table) != nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := l.fetchSchemaFile(ctx, t.DB, t.Table, path); err != nil {
			return fmt.Errorf("schema of %s.%s from %s: %w", t.DB, t.Table, l.store.Root(), err)
		}
	}
	return nil
}

// fetchSchemaFile puts the store's schema file of a table at path; a table whose schema file
// is not in the store yet (being created: it comes with its first flush) gets none.
func (l *Lake) fetchSchemaFile(ctx context.Context, db, table, path string) error {
	f, err := durable.Create(path, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := l.store.Get(ctx, l.remoteSchemaFile(db, table), f); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	return f.Commit()
}
