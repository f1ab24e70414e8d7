package iceberg

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	ice "github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ospreyhq/osprey/durable"
)

// A commit changes several tables and a writer's record in one unit. iceberg-go commits one
// table at a time, each in a transaction of its own; Commit stages each table's change with
// iceberg-go (the new manifests, manifest list and metadata file are written, nothing points at
// them yet), makes them durable with one syncfs, and then swaps every table's metadata pointer,
// records the writer's commit and the flush's number in one SQLite transaction. A reader that
// reads the pointers in one statement (Catalog.Current) therefore sees a flush whole or not at
// all, and the writer's record is true exactly when its rows are visible.
//
// The swap is optimistic: each table's row is updated only if it still points at the metadata
// the change was staged from. When another process committed in between (ingest, serve,
// compaction and scheduled runs may share a lake), the transaction is rolled back, the staged
// metadata files are removed and the change is staged again on the tables as they are now,
// after a short random wait. Files a failed attempt wrote and nothing references (its
// manifests) are orphans, removed by Maintain.
//
// What iceberg-go removes while a change is staged (the metadata files that fall out of the
// table's log, write.metadata.previous-versions-max) is removed only once the swap made the
// change current, and only by the commit that won: otherwise every commit that lost a race
// would remove the same files as the one that won, and iceberg-go would print a warning for
// each file already gone.

// Change is what one commit does to a table: data files to register, and for a compaction the
// registered files they replace.
type Change struct {
	DB, Table string
	// Schema, when set, adds the columns of an Arrow schema that the table lacks (matched by
	// name, nested fields too) before the files are registered.
	Schema *arrow.Schema
	Add    []string
	// Local are local copies of the files of Add, in the same order, when the lake's tables
	// are in an object store: their footers are read there.
	Local  []string
	Remove []string
	// Properties are set on the table (osprey.last-compaction, ...).
	Properties map[string]string
	// ExpireSnapshots expires the snapshots beyond the last keepSnapshots that are older than
	// keepSnapshotsFor, whatever their number.
	ExpireSnapshots bool
}

// Record is what a commit records of its writer, in the catalog, in the same transaction as
// the tables' changes.
type Record struct {
	// Writer names the writer's commit metadata (Catalog.Meta); "" records none.
	Writer string
	// Meta replaces the writer's commit metadata when not nil.
	Meta map[string]string
	// Instance and Flush number the flush: Catalog.Flushed(Instance) is the last Flush
	// committed, so that a flush interrupted by a crash is finished once, not twice.
	Instance string
	Flush    int64
}

// Summary keys Osprey adds to a snapshot's summary, besides the writer's metadata.
const (
	SummaryWriter   = "osprey.writer"
	SummaryInstance = "osprey.instance"
	SummaryFlush    = "osprey.flush"
)

// ErrConflict is returned by Commit when a change cannot be applied to the table as it is now
// (a file to replace is no longer in it), or when other commits kept winning.
var ErrConflict = errors.New("iceberg commit conflict")

// commitAttempts bounds the attempts of one Commit.
const commitAttempts = 20

// Expiry of snapshots on commit: once a table has more than expireAbove snapshots, a commit
// also expires those beyond the last keepSnapshots that are older than keepSnapshotsFor (a
// query may be reading a younger one). Past maxSnapshots (commits faster than that many in
// keepSnapshotsFor: a bulk load), it keeps the last expireAbove whatever their age, so that
// the metadata file each commit rewrites and each query parses stays small. Their files are
// left for Expire, which removes what no snapshot references.
const (
	expireAbove      = 100
	keepSnapshots    = 20
	keepSnapshotsFor = 10 * time.Minute
	maxSnapshots     = 300
)

// expiryPolicy is when a catalog's commits expire snapshots (see above).
type expiryPolicy struct {
	above, keep, max int
	age              time.Duration
}

// Commit applies changes (at most one per table) and records rec as one atomic unit (see the
// top of the file). Data files are registered from their footers (see dataFile); files to
// remove must be in the table. Tables must exist.
func (c *Catalog) Commit(ctx context.Context, changes []Change, rec Record) (err error) {
	defer func() { err = diskFull(err) }()
	props := ice.Properties{}
	for k, v := range rec.Meta {
		props[k] = v
	}
	if rec.Writer != "" {
		props[SummaryWriter] = rec.Writer
	}
	if rec.Instance != "" {
		props[SummaryInstance] = rec.Instance
		props[SummaryFlush] = strconv.FormatInt(rec.Flush, 10)
	}
	seen := map[string]bool{}
	for _, ch := range changes {
		key := ch.DB + "." + ch.Table
		if seen[key] {
			return fmt.Errorf("BUG: two changes of %s in one commit", key)
		}
		seen[key] = true
	}
	if c.perTable() {
		return c.commitPerTable(ctx, changes, props, rec)
	}
	for attempt := 1; ; attempt++ {
		staged, err := c.stage(ctx, changes, props)
		if err == nil && !c.Remote() {
			err = durable.SyncFS(c.dir) // an object store's PUT is durable when it returns
		}
		var swapped bool
		if err == nil {
			swapped, err = c.swap(ctx, staged, rec)
		}
		if err != nil || !swapped {
			for _, s := range staged {
				c.remove(s.newLoc)
			}
		} else {
			for _, s := range staged {
				for _, name := range s.removals {
					c.remove(name) // gone already is fine: nothing references it
				}
			}
		}
		switch {
		case err != nil:
			return err
		case swapped:
			return nil
		case attempt == commitAttempts:
			return fmt.Errorf("%w: other commits won %d times in a row", ErrConflict, attempt)
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// backoff waits before another attempt of a commit that lost a race: 2 ms doubling up to
// 200 ms, with jitter, so that racing writers spread out.
func backoff(ctx context.Context, attempt int) error {
	wait := min(2*time.Millisecond<<min(attempt-1, 7), 200*time.Millisecond)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait + rand.N(wait)):
		return nil
	}
}

// staged is a table's change, written and not yet visible.
type staged struct {
	db, tbl        string
	oldLoc, newLoc string
	removals       []string // files to remove once the change is current
}

// stage writes each change's new metadata without making it current.
func (c *Catalog) stage(ctx context.Context, changes []Change, props ice.Properties) ([]staged, error) {
	var out []staged
	for _, ch := range changes {
		s, err := c.stageOne(ctx, ch, props)
		if err != nil {
			for _, s := range out {
				c.remove(s.newLoc)
			}
			return nil, err
		}
		if s.newLoc != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

func (c *Catalog) stageOne(ctx context.Context, ch Change, props ice.Properties) (staged, error) {
	t, err := c.load(ctx, ch.DB, ch.Table)
	if err != nil {
		return staged{}, err
	}
	fio, err := c.fileIO(ctx)
	if err != nil {
		return staged{}, err
	}
	st := &stager{base: t.Metadata(), baseLoc: t.MetadataLocation(), io: fio}
	fs := &stagingFS{WriteFileIO: fio.(icebergio.WriteFileIO)}
	tw := table.New(t.Identifier(), t.Metadata(), t.MetadataLocation(), func(context.Context) (icebergio.IO, error) { return fs, nil }, st)
	txn, err := c.changeTxn(ctx, t, tw, ch, props)
	if err != nil {
		return staged{}, err
	}
	if _, err := txn.Commit(ctx); err != nil {
		return staged{}, fmt.Errorf("stage commit of %s.%s: %w", ch.DB, ch.Table, err)
	}
	return staged{db: ch.DB, tbl: ch.Table, oldLoc: st.baseLoc, newLoc: st.newLoc, removals: fs.removed}, nil
}

// changeTxn builds the transaction of a change on tw, a handle of the table t as loaded (which
// commits to the stager on SQL catalogs, to the catalog itself on Glue).
func (c *Catalog) changeTxn(ctx context.Context, t, tw *table.Table, ch Change, props ice.Properties) (*table.Transaction, error) {
	txn := tw.NewTransaction()
	if ch.Schema != nil {
		sc, err := table.ArrowSchemaToIcebergWithFreshIDs(ch.Schema, false)
		if err != nil {
			return nil, fmt.Errorf("schema of %s.%s: %w", ch.DB, ch.Table, err)
		}
		if err := txn.UpdateSchema(true, false).UnionByNameWith(sc).Commit(); err != nil {
			return nil, fmt.Errorf("add columns to %s.%s: %w", ch.DB, ch.Table, err)
		}
	}
	// Entries are built with the field IDs of the schema as the transaction has it.
	cur, err := txn.StagedTable()
	if err != nil {
		return nil, err
	}
	add := make([]ice.DataFile, len(ch.Add))
	for i, p := range ch.Add {
		local := p
		if ch.Local != nil {
			local = ch.Local[i]
		} else if c.Remote() {
			return nil, fmt.Errorf("BUG: files registered in %s.%s without local copies", ch.DB, ch.Table)
		}
		if !c.Remote() {
			if p, err = filepath.Abs(p); err != nil {
				return nil, err
			}
		}
		if add[i], err = dataFile(cur.Schema(), cur.Spec(), p, local); err != nil {
			return nil, fmt.Errorf("register in %s.%s: %w", ch.DB, ch.Table, err)
		}
	}
	if len(ch.Remove) > 0 {
		current, err := filesByPath(ctx, t)
		if err != nil {
			return nil, err
		}
		remove := make([]ice.DataFile, len(ch.Remove))
		for i, p := range ch.Remove {
			if !c.Remote() {
				if p, err = filepath.Abs(p); err != nil {
					return nil, err
				}
			}
			f, ok := current[p]
			if !ok {
				return nil, fmt.Errorf("%w: %s.%s no longer holds %s", ErrConflict, ch.DB, ch.Table, p)
			}
			remove[i] = f
		}
		err = txn.ReplaceDataFilesWithDataFiles(ctx, remove, add, props)
		if err != nil {
			return nil, fmt.Errorf("replace files of %s.%s: %w", ch.DB, ch.Table, err)
		}
	} else if len(add) > 0 {
		if err := txn.AddDataFiles(ctx, add, props, table.WithoutDuplicateCheck()); err != nil {
			return nil, fmt.Errorf("register in %s.%s: %w", ch.DB, ch.Table, err)
		}
	}
	if len(ch.Properties) > 0 {
		if err := txn.SetProperties(ch.Properties); err != nil {
			return nil, fmt.Errorf("set properties of %s.%s: %w", ch.DB, ch.Table, err)
		}
	}
	if n, x := len(t.Metadata().Snapshots()), c.expiry; n > x.above || ch.ExpireSnapshots && n > x.keep {
		keep, age := x.keep, x.age
		if x.max > 0 && n > x.max {
			keep, age = x.above, 0
		}
		err := txn.ExpireSnapshots(table.WithRetainLast(keep), table.WithOlderThan(age), table.WithPostCommit(false))
		if err != nil {
			return nil, fmt.Errorf("expire snapshots of %s.%s: %w", ch.DB, ch.Table, err)
		}
	}
	return txn, nil
}

// stagingFS is the file system of a staged change: the lake's own, except that files are not
// removed but remembered, for Commit to remove once the change is current.
type stagingFS struct {
	icebergio.WriteFileIO
	removed []string
}

func (s *stagingFS) Remove(name string) error {
	s.removed = append(s.removed, name)
	return nil
}

// filesByPath returns a table's current data files by path.
func filesByPath(ctx context.Context, t *table.Table) (map[string]ice.DataFile, error) {
	tasks, err := t.Scan().PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", strings.Join(t.Identifier(), "."), err)
	}
	out := make(map[string]ice.DataFile, len(tasks))
	for _, task := range tasks {
		out[localPath(task.File.FilePath())] = task.File
	}
	return out, nil
}

// stager is the catalog a transaction commits to while it is staged: it writes the table's
// new metadata file and remembers it, and leaves the catalog's pointer alone (swap moves it).
type stager struct {
	base    table.Metadata
	baseLoc string
	newLoc  string
	io      icebergio.IO
}

func (s *stager) LoadTable(context.Context, table.Identifier) (*table.Table, error) {
	return nil, errors.New("BUG: a staged commit reloads its table")
}

func (s *stager) CommitTable(_ context.Context, _ table.Identifier, reqs []table.Requirement, updates []table.Update) (table.Metadata, string, error) {
	for _, r := range reqs {
		if err := r.Validate(s.base); err != nil {
			return nil, "", err
		}
	}
	updated, err := table.UpdateTableMetadata(s.base, updates, s.baseLoc)
	if err != nil {
		return nil, "", err
	}
	version, err := metadataVersion(s.baseLoc)
	if err != nil {
		return nil, "", err
	}
	provider, err := table.LoadLocationProvider(updated.Location(), updated.Properties())
	if err != nil {
		return nil, "", err
	}
	loc, err := provider.NewTableMetadataFileLocation(version + 1)
	if err != nil {
		return nil, "", err
	}
	b, err := json.Marshal(updated)
	if err != nil {
		return nil, "", err
	}
	// Written without fsync in a local lake: Commit syncs the file system once for every
	// staged file.
	if err := s.io.(icebergio.WriteFileIO).WriteFile(loc, b); err != nil {
		return nil, "", err
	}
	s.newLoc = loc
	return updated, loc, nil
}

// metadataVersion reads the version of a metadata file name (NNNNN-<uuid>.metadata.json).
func metadataVersion(loc string) (int, error) {
	name := filepath.Base(localPath(loc))
	num, _, ok := strings.Cut(name, "-")
	v, err := strconv.Atoi(num)
	if !ok || err != nil || !strings.HasSuffix(name, ".metadata.json") {
		return 0, fmt.Errorf("metadata file %s has no version", loc)
	}
	return v, nil
}

// swap makes staged changes current and records rec in one transaction. It reports false,
// having changed nothing, when a table no longer points at the metadata its change was staged
// from.
//
// On PostgreSQL the transaction is READ COMMITTED, whatever the server's default: a second
// commit's conditional UPDATE waits for the first's row lock and then finds the row changed
// (0 rows), where a stricter isolation would fail it. Tables are updated in one order, by name,
// so that two commits of the same tables cannot deadlock; a serialization failure or a
// deadlock the server reports anyway is a lost race too.
func (c *Catalog) swap(ctx context.Context, changes []staged, rec Record) (bool, error) {
	var opts *sql.TxOptions
	if c.kind == Postgres {
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	tx, err := c.db.BeginTx(ctx, opts)
	if err != nil {
		return false, fmt.Errorf("iceberg catalog: %w", err)
	}
	defer tx.Rollback()
	changes = slices.Clone(changes)
	slices.SortFunc(changes, func(a, b staged) int { return strings.Compare(a.db+"."+a.tbl, b.db+"."+b.tbl) })
	lost := func(err error) bool {
		var pg *pgconn.PgError
		return errors.As(err, &pg) && (pg.Code == "40001" || pg.Code == "40P01")
	}
	for _, s := range changes {
		res, err := tx.ExecContext(ctx, c.q(`UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ?
			WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ?`),
			s.newLoc, s.oldLoc, catalogName, s.db, s.tbl, s.oldLoc)
		if lost(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("iceberg catalog: commit %s.%s: %w", s.db, s.tbl, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return false, err
		} else if n != 1 {
			return false, nil
		}
	}
	if rec.Writer != "" && rec.Meta != nil {
		b, err := json.Marshal(rec.Meta)
		if err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, c.q(`INSERT INTO osprey_commits (writer, meta) VALUES (?, ?)
			ON CONFLICT (writer) DO UPDATE SET meta = excluded.meta`), rec.Writer, string(b)); err != nil {
			return false, fmt.Errorf("iceberg catalog: record commit of %s: %w", rec.Writer, err)
		}
	}
	if rec.Instance != "" {
		if _, err := tx.ExecContext(ctx, c.q(`INSERT INTO osprey_flushes (instance, flush) VALUES (?, ?)
			ON CONFLICT (instance) DO UPDATE SET flush = excluded.flush`), rec.Instance, rec.Flush); err != nil {
			return false, fmt.Errorf("iceberg catalog: record flush of %s: %w", rec.Instance, err)
		}
	}
	if err := tx.Commit(); lost(err) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("iceberg catalog: commit: %w", err)
	}
	return true, nil
}

// osprey's own tables in the catalog database.
const ospreySchema = `
CREATE TABLE IF NOT EXISTS osprey_commits (writer TEXT PRIMARY KEY, meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS osprey_flushes (instance TEXT PRIMARY KEY, flush BIGINT NOT NULL);`

// Meta returns the commit metadata last recorded for writer, or nil.
func (c *Catalog) Meta(ctx context.Context, writer string) (map[string]string, error) {
	if c.perTable() {
		b, err := c.readRecord(ctx, "records", writer)
		if b == nil || err != nil {
			return nil, err
		}
		var meta map[string]string
		if err := json.Unmarshal(b, &meta); err != nil {
			return nil, fmt.Errorf("commit metadata of %s: %w", writer, err)
		}
		return meta, nil
	}
	var s string
	err := c.db.QueryRowContext(ctx, c.q(`SELECT meta FROM osprey_commits WHERE writer = ?`), writer).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("iceberg catalog: commit metadata of %s: %w", writer, err)
	}
	var meta map[string]string
	if err := json.Unmarshal([]byte(s), &meta); err != nil {
		return nil, fmt.Errorf("iceberg catalog: commit metadata of %s: %w", writer, err)
	}
	return meta, nil
}

// Flushed returns the number of the last flush committed by a writer instance, or -1.
func (c *Catalog) Flushed(ctx context.Context, instance string) (int64, error) {
	if c.perTable() {
		b, err := c.readRecord(ctx, "flushes", instance)
		if b == nil || err != nil {
			return -1, err
		}
		return strconv.ParseInt(string(b), 10, 64)
	}
	var n int64
	err := c.db.QueryRowContext(ctx, c.q(`SELECT flush FROM osprey_flushes WHERE instance = ?`), instance).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("iceberg catalog: flushes of %s: %w", instance, err)
	}
	return n, nil
}

// ForgetInstance removes a writer instance's flush number, once nothing of it can be left to
// finish.
func (c *Catalog) ForgetInstance(ctx context.Context, instance string) error {
	if c.perTable() {
		c.remove(c.recordLoc("flushes", instance))
		return nil
	}
	_, err := c.db.ExecContext(ctx, c.q(`DELETE FROM osprey_flushes WHERE instance = ?`), instance)
	return err
}

// Pointer is where a table's current metadata is.
type Pointer struct {
	DB, Table, Location string
}

// Current returns every table's current metadata location, read in one statement: what one
// commit changed is either all there or not at all.
func (c *Catalog) Current(ctx context.Context) ([]Pointer, error) {
	switch c.kind {
	case Glue:
		return c.currentGlue(ctx)
	case REST:
		return c.currentREST(ctx)
	}
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT table_namespace, table_name, metadata_location FROM iceberg_tables
		WHERE catalog_name = ? AND metadata_location IS NOT NULL AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)
		ORDER BY table_namespace, table_name`), catalogName)
	if err != nil {
		return nil, fmt.Errorf("iceberg catalog: %w", err)
	}
	defer rows.Close()
	var out []Pointer
	for rows.Next() {
		var p Pointer
		if err := rows.Scan(&p.DB, &p.Table, &p.Location); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// remove removes a file of the lake's tables, by location; gone already is fine.
func (c *Catalog) remove(loc string) {
	if !c.Remote() {
		os.Remove(localPath(loc))
		return
	}
	if fio, err := c.fileIO(context.Background()); err == nil {
		fio.Remove(loc)
	}
}
