package lake

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// OrphanAge is how long a file no snapshot references is left before it is deleted: longer
// than a flush takes from renaming its files into place to committing them.
const OrphanAge = time.Hour

// Status returns the figures of every table of the lake's catalog (see iceberg.Status), by
// database and name.
func (l *Lake) Status(ctx context.Context) ([]iceberg.Status, error) {
	cat, err := l.OpenCatalog(ctx)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	ptrs, err := cat.Current(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]iceberg.Status, 0, len(ptrs))
	for _, p := range ptrs {
		st, err := cat.Status(ctx, p.DB, p.Table)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Expire applies retention to every table of the lake and cleans their directories (see
// iceberg.Catalog.Expire): keep returns how long a table's rows are kept (0: forever). It
// returns the figures of each table, in order, and stops at the first error.
func (l *Lake) Expire(ctx context.Context, keep func(db, table string) time.Duration, now time.Time) ([]iceberg.Status, []iceberg.ExpireStats, error) {
	cat, err := l.OpenCatalog(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer cat.Close()
	// A flush that a crashed writer renamed into place but did not commit is finished first:
	// its files, not yet in a snapshot, would otherwise become orphans once old enough.
	l.cleanStaleTemp(cat, filepath.Join(l.dir, "_osprey", "tmp"), slog.New(slog.DiscardHandler))
	ptrs, err := cat.Current(ctx)
	if err != nil {
		return nil, nil, err
	}
	var tables []iceberg.Status
	var stats []iceberg.ExpireStats
	for _, p := range ptrs {
		var cutoff time.Time
		if d := keep(p.DB, p.Table); d > 0 {
			cutoff = now.Add(-d)
		}
		st, err := cat.Expire(ctx, p.DB, p.Table, cutoff, OrphanAge, now)
		tables = append(tables, iceberg.Status{DB: p.DB, Table: p.Table})
		stats = append(stats, st)
		if err != nil {
			return tables, stats, err
		}
	}
	return tables, stats, nil
}
