package query

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ospreyhq/osprey/durable"
	"github.com/ospreyhq/osprey/lake"
)

// ExportOptions say what Export writes.
type ExportOptions struct {
	// DB and Table name the lake table, such as panther_logs and panther_audit.
	DB, Table string
	// Since is an offset as p_occurs_since takes it ('7 days', '6 h', 3600); empty: all rows.
	Since string
	// Where is an SQL condition on the table's rows; empty: none.
	Where string
	// Out is a .parquet file, or a directory: one file <table>.parquet in it, or with
	// Partitioned one file a partition in year=YYYY/month=MM/day=DD/hour=HH/ under it.
	Out         string
	Partitioned bool
}

// ExportStats count what Export wrote.
type ExportStats struct {
	Rows  int64
	Files int
}

// Export writes a table's rows as Parquet for other engines. The rows are selected by an
// ordinary statement through Run (macro, narrowing, the locked session: the condition is user
// text and runs where user text runs) and written by Go (lake.FileWriter); the partition columns
// are left out of the rows (a partitioned export has them in its paths). Each file is written
// aside and renamed into place, so a reader sees whole files.
func (d *DB) Export(ctx context.Context, o ExportOptions) (ExportStats, error) {
	var st ExportStats
	if err := lake.CheckName(o.DB); err != nil || !isLakeDB(o.DB) {
		return st, fmt.Errorf("export: unknown database %q (want one of %s)", o.DB, strings.Join(lake.Databases, ", "))
	}
	if _, err := d.lake.TableSignature(o.DB, o.Table); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return st, fmt.Errorf("export: no table %s.%s in the lake", o.DB, o.Table)
		}
		return st, err
	}
	var from time.Time
	conds := []string{}
	if o.Since != "" {
		since := o.Since
		if _, err := parseOffset(since); err != nil {
			since = quote(o.Since) // '7 days' given without quotes
		}
		off, err := parseOffset(since)
		if err != nil {
			return st, fmt.Errorf("export: --since %s: %v", o.Since, err)
		}
		from = d.opts.Now().Add(-off)
		conds = append(conds, fmt.Sprintf("p_event_time >= %s", tsLiteral(from)))
	}
	if strings.TrimSpace(o.Where) != "" {
		conds = append(conds, "("+o.Where+")")
	}
	stmt := func(extra ...string) string {
		c := append(append([]string(nil), conds...), extra...)
		s := fmt.Sprintf("SELECT * EXCLUDE (year, month, day, hour) FROM %s.%s", ident(o.DB), ident(o.Table))
		if len(c) > 0 {
			s += " WHERE " + strings.Join(c, " AND ")
		}
		return s
	}
	if !o.Partitioned {
		path := o.Out
		if !strings.HasSuffix(strings.ToLower(path), ".parquet") {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return st, err
			}
			path = filepath.Join(path, o.Table+".parquet")
		}
		n, err := d.exportFile(ctx, stmt(), path, true)
		if err != nil {
			return st, err
		}
		return ExportStats{Rows: n, Files: 1}, nil
	}
	if strings.HasSuffix(strings.ToLower(o.Out), ".parquet") {
		return st, errors.New("export: --partitioned writes a directory: give --out DIR")
	}
	// One statement a partition: each reads the files of its hour only.
	hours, err := d.hours(ctx, o.DB, o.Table, from)
	if err != nil {
		return st, err
	}
	for _, hour := range hours {
		path := filepath.Join(o.Out, lake.PartitionPath(hour), "data.parquet")
		n, err := d.exportFile(ctx, stmt(
			fmt.Sprintf("p_event_time >= %s", tsLiteral(hour)),
			fmt.Sprintf("p_event_time < %s", tsLiteral(hour.Add(time.Hour)))), path, false)
		if err != nil {
			return st, err
		}
		if n > 0 {
			st.Rows += n
			st.Files++
		}
	}
	return st, nil
}

// hours returns the UTC hours, from the hour of from (zero: the first), in which the current
// files of a table may hold rows, in order.
func (d *DB) hours(ctx context.Context, db, table string, from time.Time) ([]time.Time, error) {
	snap, err := d.current(ctx)
	if err != nil {
		return nil, err
	}
	files, err := d.tableFiles(ctx, snap, db, table)
	if err != nil {
		return nil, err
	}
	set := map[time.Time]bool{}
	for _, f := range files {
		for h := f.MinTime.Truncate(time.Hour); !h.After(f.MaxTime); h = h.Add(time.Hour) {
			if from.IsZero() || !h.Before(from.Truncate(time.Hour)) {
				set[h] = true
			}
		}
	}
	hours := make([]time.Time, 0, len(set))
	for h := range set {
		hours = append(hours, h)
	}
	slices.SortFunc(hours, func(a, b time.Time) int { return a.Compare(b) })
	return hours, nil
}

// exportFile writes a statement's rows to a Parquet file; without keepEmpty, a result without
// rows writes no file.
func (d *DB) exportFile(ctx context.Context, stmt, path string, keepEmpty bool) (int64, error) {
	rows, err := d.Run(ctx, Request{SQL: stmt})
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	defer rows.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	f, err := durable.Create(path, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := Write(f, rows, WriteOptions{Format: "parquet"})
	if err == nil {
		err = rows.Err()
	}
	if err == nil && n == 0 && !keepEmpty {
		err = errEmpty
	}
	if err == nil {
		err = f.Commit()
	}
	if err != nil {
		if errors.Is(err, errEmpty) {
			return 0, nil
		}
		return n, fmt.Errorf("export %s: %w", path, err)
	}
	return n, nil
}

var errEmpty = errors.New("no rows")
