package iceberg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
)

// Table properties Osprey sets on its maintenance commits, shown by osprey lake status.
const (
	PropLastCompaction = "osprey.last-compaction"
	PropLastExpiry     = "osprey.last-expiry"
)

// Status is what osprey lake status shows of a table.
type Status struct {
	DB, Table      string
	Files          int
	Rows, Bytes    int64
	Snapshots      int
	MetadataFiles  int
	MetadataBytes  int64
	Oldest, Newest time.Time // event times; zero for an empty table
	LastCompaction time.Time
	LastExpiry     time.Time
}

// Status returns a table's figures: its current snapshot's files, rows and bytes, its snapshots,
// the files and bytes of its metadata directory, and when it was last compacted and expired.
func (c *Catalog) Status(ctx context.Context, db, tbl string) (Status, error) {
	st := Status{DB: db, Table: tbl}
	t, err := c.load(ctx, db, tbl)
	if err != nil {
		return st, err
	}
	files, err := filesOf(ctx, t)
	if err != nil {
		return st, err
	}
	st.Files = len(files)
	for i, f := range files {
		st.Rows += f.Rows
		st.Bytes += f.Size
		if i == 0 || f.MinTime.Before(st.Oldest) {
			st.Oldest = f.MinTime
		}
		if i == 0 || f.MaxTime.After(st.Newest) {
			st.Newest = f.MaxTime
		}
	}
	st.Snapshots = len(t.Metadata().Snapshots())
	props := t.Properties()
	st.LastCompaction = parseMillis(props[PropLastCompaction])
	st.LastExpiry = parseMillis(props[PropLastExpiry])
	fio, err := c.fileIO(ctx)
	if err != nil {
		return st, err
	}
	metadata := t.Location() + "/metadata"
	if !c.Remote() {
		metadata = filepath.Join(localPath(t.Location()), "metadata")
	}
	if lio, ok := fio.(icebergio.ListableIO); ok {
		lio.WalkDir(metadata, func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if info, err := d.Info(); err == nil {
					st.MetadataFiles++
					st.MetadataBytes += info.Size()
				}
			}
			return nil
		})
	}
	return st, nil
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func parseMillis(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// ExpireStats tell what Expire did.
type ExpireStats struct {
	Files   int   // data files dropped from the table by retention
	Rows    int64 // their rows
	Removed int   // files deleted from disk (orphans: data and metadata no snapshot references)
	Bytes   int64 // their bytes
}

// Expire applies a table's retention and cleans its directory, in this order:
//
//  1. the data files whose every row is older than cutoff (when cutoff is not zero) are dropped
//     from the table, in one commit;
//  2. the snapshots beyond the last few that are older than a few minutes are expired (a query
//     that began before may still read theirs);
//  3. files under the table's directory that no remaining snapshot references and that were
//     last written more than orphanAge ago are deleted: data files dropped by retention or
//     replaced by compaction, manifests and manifest lists of expired snapshots, the files
//     of a commit that lost a race. orphanAge must exceed the time a flush takes to commit
//     the files it renamed into place (an hour is safe).
func (c *Catalog) Expire(ctx context.Context, db, tbl string, cutoff time.Time, orphanAge time.Duration, now time.Time) (ExpireStats, error) {
	var st ExpireStats
	ch := Change{DB: db, Table: tbl, ExpireSnapshots: true, Properties: map[string]string{PropLastExpiry: millis(now)}}
	if !cutoff.IsZero() {
		files, err := c.CurrentFiles(ctx, db, tbl)
		if err != nil {
			return st, err
		}
		for _, f := range files {
			if f.MaxTime.Before(cutoff) {
				ch.Remove = append(ch.Remove, f.Path)
				st.Files++
				st.Rows += f.Rows
			}
		}
	}
	if err := c.Commit(ctx, []Change{ch}, Record{}); err != nil {
		return st, err
	}
	t, err := c.load(ctx, db, tbl)
	if err != nil {
		return st, err
	}
	res, err := t.DeleteOrphanFiles(ctx, table.WithFilesOlderThan(orphanAge))
	if err != nil {
		return st, fmt.Errorf("remove orphan files of %s.%s: %w", db, tbl, err)
	}
	st.Removed = len(res.DeletedFiles)
	st.Bytes = res.TotalSizeBytes
	return st, nil
}
