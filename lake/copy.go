package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ospreyhq/osprey/durable"
	"github.com/ospreyhq/osprey/lake/iceberg"
)

// CopyStats counts what Copy did.
type CopyStats struct {
	Tables, Files int
	Rows, Bytes   int64
}

// copyBatch is how many files one commit of Copy registers.
const copyBatch = 200

// Copy copies the current rows of every table of the lake into the lake dst (usually another
// kind: a laptop's lake into S3 with a shared catalog): each table's data files, under the
// same paths, registered in dst's catalog as the source registered them, and its schema file.
// Files dst has already (a copy interrupted and run again) are skipped, so Copy may be run
// until it succeeds. The writers' records (serve's log position, alert epochs) are not
// copied: they belong to the source's directory. progress, when set, is called after each
// batch of a table.
func (l *Lake) Copy(ctx context.Context, dst *Lake, progress func(db, table string, files, of int)) (CopyStats, error) {
	var st CopyStats
	if dst.Location() == l.Location() {
		return st, errors.New("copy a lake into itself")
	}
	src, err := l.OpenCatalog(ctx)
	if err != nil {
		return st, err
	}
	defer src.Close()
	cat, err := dst.OpenCatalog(ctx)
	if err != nil {
		return st, err
	}
	defer cat.Close()
	ptrs, err := src.Current(ctx)
	if err != nil {
		return st, err
	}
	if err := l.SyncSchemas(ctx, ptrs); err != nil {
		return st, err
	}
	tmp, err := os.MkdirTemp(filepath.Join(dst.dir, "_osprey"), "copy-")
	if err != nil {
		return st, err
	}
	defer os.RemoveAll(tmp)
	for _, p := range ptrs {
		if err := l.copyTable(ctx, dst, src, cat, p, tmp, &st, progress); err != nil {
			return st, fmt.Errorf("copy %s.%s: %w", p.DB, p.Table, err)
		}
	}
	return st, nil
}

func (l *Lake) copyTable(ctx context.Context, dst *Lake, src, cat *iceberg.Catalog, p iceberg.Pointer, tmp string, st *CopyStats, progress func(string, string, int, int)) error {
	s, err := l.arrowSchema(p.DB, p.Table)
	if err != nil {
		return err
	}
	// The schema file first: dst's writers and queries read the table's columns from it.
	schema := l.SchemaFile(p.DB, p.Table)
	if err := copyLocal(schema, dst.SchemaFile(p.DB, p.Table)); err != nil {
		return err
	}
	if dst.store != nil {
		if err := dst.store.Put(ctx, dst.remoteSchemaFile(p.DB, p.Table), schema); err != nil {
			return err
		}
	}
	has, err := cat.HasTable(ctx, p.DB, p.Table)
	if err != nil {
		return err
	}
	if !has {
		if err := cat.CreateTable(ctx, p.DB, p.Table, s); err != nil {
			return err
		}
		st.Tables++
	} else if err := cat.Commit(ctx, []iceberg.Change{{DB: p.DB, Table: p.Table, Schema: s}}, iceberg.Record{}); err != nil {
		return err
	}
	files, err := src.FilesAt(ctx, p.DB, p.Table, p.Location)
	if err != nil {
		return err
	}
	have, err := cat.CurrentFiles(ctx, p.DB, p.Table)
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, f := range have {
		done[f.Path] = true
	}
	var todo []iceberg.DataFile
	for _, f := range files {
		if !done[dst.locationOf(l, f.Path)] {
			todo = append(todo, f)
		}
	}
	n := len(files) - len(todo)
	for batch := range slices.Chunk(todo, copyBatch) {
		ch := iceberg.Change{DB: p.DB, Table: p.Table}
		var locals []string
		for _, f := range batch {
			local, err := l.localCopy(ctx, f.Path, tmp)
			if err != nil {
				return err
			}
			if local != f.Path {
				locals = append(locals, local)
			}
			loc := dst.locationOf(l, f.Path)
			if dst.store != nil {
				if err := dst.store.Put(ctx, loc, local); err != nil {
					return err
				}
				ch.Local = append(ch.Local, local)
			} else if err := copyLocal(local, loc); err != nil {
				return err
			}
			ch.Add = append(ch.Add, loc)
			st.Rows += f.Rows
			st.Bytes += f.Size
		}
		err := cat.Commit(ctx, []iceberg.Change{ch}, iceberg.Record{})
		for _, p := range locals {
			os.Remove(p)
		}
		if err != nil {
			return err
		}
		n += len(batch)
		st.Files += len(batch)
		if progress != nil {
			progress(p.DB, p.Table, n, len(files))
		}
	}
	return nil
}

// locationOf returns where a data file of the lake src goes in the lake l: the same path
// under l's location.
func (l *Lake) locationOf(src *Lake, loc string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(loc, src.Location()), "/")
	if src.store == nil {
		rel = filepath.ToSlash(rel)
	}
	if l.store != nil {
		return l.store.Location(rel)
	}
	return filepath.Join(l.dir, filepath.FromSlash(rel))
}

// localCopy returns a local path holding the data file at loc: the file itself in a local
// lake, or a copy downloaded into dir.
func (l *Lake) localCopy(ctx context.Context, loc, dir string) (string, error) {
	if l.store == nil {
		return loc, nil
	}
	f, err := os.CreateTemp(dir, "src-*.parquet")
	if err != nil {
		return "", err
	}
	if _, err := l.store.Get(ctx, loc, f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), f.Close()
}

// copyLocal copies a file durably to dst, creating its directory.
func copyLocal(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := mkdirAllSynced(filepath.Dir(dst)); err != nil {
		return err
	}
	f, err := durable.Create(dst, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(f, in); err != nil {
		return err
	}
	return f.Commit()
}
