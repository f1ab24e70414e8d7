package lake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/ospreyhq/osprey/durable"
	"github.com/ospreyhq/osprey/lake/iceberg"
)

// Migration: lakes written before the Iceberg catalog have each table's files in its Hive
// directories (year=/month=/day=/hour=) and each writer's commit metadata in
// _osprey/commits/<writer>.json. Migrate registers those files in Iceberg tables without
// rewriting them, in commits of migrateBatch files, and moves the commit metadata into the
// catalog. It is idempotent and can be interrupted and resumed: a file already registered is
// not registered again, and a writer whose metadata the catalog has keeps it. Until a lake is
// migrated, writers, queries and CommitMeta refuse it with ErrNeedsMigration.

// migrateBatch is the number of files a migration commit registers.
const migrateBatch = 500

// MigrateStats tell what Migrate did.
type MigrateStats struct {
	Tables  int // tables created in the catalog
	Files   int // files registered
	Writers int // writers' commit metadata moved into the catalog
}

// oldCommitsDir held each writer's commit metadata before the catalog did.
func (l *Lake) oldCommitsDir() string { return filepath.Join(l.dir, "_osprey", "commits") }

// Migrate registers the files of a lake in the Hive layout (see above). progress, if not nil,
// is called after each commit with the table and the files registered in it so far.
func (l *Lake) Migrate(ctx context.Context, progress func(db, table string, files int)) (MigrateStats, error) {
	var st MigrateStats
	cat, err := l.OpenCatalog(ctx)
	if err != nil {
		return st, err
	}
	defer cat.Close()
	if err := l.finishOldFlushes(); err != nil {
		return st, err
	}
	for _, db := range Databases {
		tables, err := l.Tables(db)
		if err != nil {
			return st, err
		}
		for _, t := range tables {
			if err := l.migrateTable(ctx, cat, t, &st, progress); err != nil {
				return st, fmt.Errorf("migrate %s.%s: %w", t.DB, t.Name, err)
			}
		}
	}
	entries, err := os.ReadDir(l.oldCommitsDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, err
	}
	for _, e := range entries {
		writer, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if meta, err := cat.Meta(ctx, writer); err != nil {
			return st, err
		} else if meta != nil {
			continue
		}
		meta, err := readOldMeta(filepath.Join(l.oldCommitsDir(), e.Name()))
		if err != nil {
			return st, err
		}
		if err := cat.Commit(ctx, nil, iceberg.Record{Writer: writer, Meta: meta}); err != nil {
			return st, err
		}
		st.Writers++
	}
	return st, nil
}

func (l *Lake) migrateTable(ctx context.Context, cat *iceberg.Catalog, t Table, st *MigrateStats, progress func(string, string, int)) error {
	has, err := cat.HasTable(ctx, t.DB, t.Name)
	if err != nil {
		return err
	}
	if !has {
		s, err := l.arrowSchema(t.DB, t.Name)
		if err != nil {
			return err
		}
		if err := cat.CreateTable(ctx, t.DB, t.Name, s); err != nil {
			return err
		}
		st.Tables++
	}
	registered, err := cat.CurrentFiles(ctx, t.DB, t.Name)
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, f := range registered {
		done[f.Path] = true
	}
	files, err := filepath.Glob(filepath.Join(l.TableDir(t.DB, t.Name), "year=*", "month=*", "day=*", "hour=*", "*.parquet"))
	if err != nil {
		return err
	}
	var todo []string
	for _, f := range files {
		if !done[f] {
			todo = append(todo, f)
		}
	}
	n := 0
	for batch := range slices.Chunk(todo, migrateBatch) {
		if err := cat.Commit(ctx, []iceberg.Change{{DB: t.DB, Table: t.Name, Add: batch}}, iceberg.Record{}); err != nil {
			return err
		}
		n += len(batch)
		st.Files += len(batch)
		if progress != nil {
			progress(t.DB, t.Name, n)
		}
	}
	return nil
}

// arrowSchema reads a table's columns from its schema file.
func (l *Lake) arrowSchema(db, table string) (*arrow.Schema, error) {
	r, err := file.OpenParquetFile(l.SchemaFile(db, table), false)
	if err != nil {
		return nil, fmt.Errorf("read schema of %s.%s: %w", db, table, err)
	}
	defer r.Close()
	fr, err := pqarrow.NewFileReader(r, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("read schema of %s.%s: %w", db, table, err)
	}
	s, err := fr.Schema()
	if err != nil {
		return nil, err
	}
	return lakeSchema(s), nil
}

func readOldMeta(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var meta map[string]string
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return meta, nil
}

// finishOldFlushes finishes the flushes that writers of an older osprey left half published
// (their manifests have no writer instance), as those writers did: the renames, the removal
// of the files a compaction replaced, and the commit metadata in _osprey/commits.
func (l *Lake) finishOldFlushes() error {
	manifests, err := filepath.Glob(filepath.Join(l.dir, "_osprey", "tmp", "*", manifestName))
	if err != nil {
		return err
	}
	for _, path := range manifests {
		dir := filepath.Dir(path)
		m, ok, err := readManifest(dir)
		if err != nil {
			return err
		}
		if !ok || m.Instance != "" {
			continue // none, or a writer of this osprey finishes it
		}
		if err := l.placeRest(m); err != nil {
			return err
		}
		if err := durable.SyncFS(l.dir); err != nil {
			return err
		}
		for _, p := range m.Deletes {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		if m.Meta != nil && m.Writer != "" {
			if err := os.MkdirAll(l.oldCommitsDir(), 0o755); err != nil {
				return err
			}
			if err := writeFileDurably(filepath.Join(l.oldCommitsDir(), m.Writer+".json"), m.Meta); err != nil {
				return err
			}
		}
		if err := os.Remove(path); err != nil {
			return err
		}
	}
	return nil
}

// NeedsMigration reports whether the lake holds tables or commit metadata written before the
// Iceberg catalog that Migrate has not moved yet.
func (l *Lake) NeedsMigration(ctx context.Context) (bool, error) {
	cat, err := l.OpenCatalog(ctx)
	if err != nil {
		return false, err
	}
	defer cat.Close()
	for _, db := range Databases {
		tables, err := l.Tables(db)
		if err != nil {
			return false, err
		}
		for _, t := range tables {
			has, err := cat.HasTable(ctx, t.DB, t.Name)
			if err != nil {
				return false, err
			}
			if !has && l.HasHiveData(t.DB, t.Name) {
				return true, nil
			}
		}
	}
	entries, _ := os.ReadDir(l.oldCommitsDir())
	for _, e := range entries {
		if writer, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			if meta, err := cat.Meta(ctx, writer); err != nil || meta == nil {
				return true, err
			}
		}
	}
	return false, nil
}
