package lake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ospreyhq/osprey/durable"
	"github.com/ospreyhq/osprey/lake/iceberg"
)

// A flush is published as one unit. Its files were finished in the writer's tmp directory; then
//
//  1. syncfs makes their data durable;
//  2. a manifest (the renames to do, the flush's number and metadata) is written to the tmp
//     directory, durably;
//  3. the files are renamed into their tables' directories;
//  4. the files are registered in their Iceberg tables and the metadata recorded, in one
//     catalog commit (lake/iceberg Catalog.Commit: the new table metadata is made durable,
//     then every table's pointer, the writer's metadata and the flush's number change in one
//     SQLite transaction);
//  5. the manifest is removed.
//
// A writer that opens the lake finishes the flush of a crashed writer whose manifest it finds
// (steps 3 to 5 again: renames already done are skipped, and the commit is skipped when the
// catalog has the flush's number) before it removes that writer's other files, which were never
// visible. So a flush is visible whole or not at all, and its metadata is recorded exactly when
// its files are visible: osprey serve records there how far its write-ahead log is in the lake,
// and a restart replays what is not.

const manifestName = "manifest.json"

// manifest is a flush (or compaction) being published.
type manifest struct {
	Writer   string            `json:"writer,omitempty"`
	Instance string            `json:"instance"`          // the writer's tmp directory name
	Flush    int64             `json:"flush"`             // the writer's flush number
	Renames  [][2]string       `json:"renames"`           // tmp, dst
	Deletes  []string          `json:"deletes,omitempty"` // files the new ones replace (compaction)
	Meta     map[string]string `json:"meta,omitempty"`
	Props    map[string]string `json:"props,omitempty"` // table properties to set (compaction)
}

// CommitMeta returns the metadata of the last flush of the writer named name (see
// Writer.FlushWith), or nil if it has none yet.
func (l *Lake) CommitMeta(name string) (map[string]string, error) {
	cat, err := l.OpenCatalog(context.Background())
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	meta, err := cat.Meta(context.Background(), l.scoped(name))
	if meta == nil && err == nil {
		// A lake of an older osprey kept it in a file: reading none from the catalog would
		// make serve replay its log from the start.
		if _, serr := os.Stat(filepath.Join(l.oldCommitsDir(), name+".json")); serr == nil {
			return nil, ErrNeedsMigration
		}
	}
	return meta, err
}

// OpenCatalog opens the lake's Iceberg catalog; the caller closes it.
func (l *Lake) OpenCatalog(ctx context.Context) (*iceberg.Catalog, error) {
	o := iceberg.Options{Dir: l.dir, Kind: l.opts.Catalog, DSN: l.opts.CatalogDSN, AWS: l.opts.AWS, GlueCatalogID: l.opts.GlueCatalogID, REST: l.opts.REST}
	if l.store != nil {
		o.Warehouse = l.store.Root()
	}
	return iceberg.OpenWith(ctx, o)
}

// publish makes files (finished in the tmp directory) durable and visible in one unit, with the
// metadata. It returns the files renamed and the first error; files not renamed stay in tmp.
func (w *Writer) publish(files []finishedFile, meta map[string]string) ([]bool, error) {
	done := make([]bool, len(files))
	if len(files) == 0 && meta == nil {
		return done, nil
	}
	m := w.newManifest()
	m.Meta = meta
	for _, f := range files {
		m.Renames = append(m.Renames, [2]string{f.tmp, f.dst})
	}
	errs, err := w.publishManifest(m)
	for i := range done {
		done[i] = errs == nil || errs[i] == nil
	}
	return done, err
}

// newManifest returns a manifest for the writer's next flush. The caller holds publishMu.
func (w *Writer) newManifest() manifest {
	w.flushes++
	m := manifest{Writer: w.lake.scoped(w.opts.Name), Instance: w.lake.scoped(filepath.Base(w.tmp)), Flush: w.flushes}
	if w.opts.Name == "" {
		m.Writer = ""
	}
	return m
}

// publishManifest publishes a manifest's renames and removals as one unit (see the top of the
// file). On a failed rename it returns each rename's error, and the manifest stays for the
// next writer (or a later flush of this one) to finish.
func (w *Writer) publishManifest(m manifest) ([]error, error) {
	if err := durable.SyncFS(w.tmp); err != nil {
		return nil, fmt.Errorf("sync %s: %w", w.tmp, err)
	}
	if err := writeFileDurably(filepath.Join(w.tmp, manifestName), m); err != nil {
		return nil, fmt.Errorf("write flush manifest: %w", err)
	}
	errs := w.lake.placeAll(m.Renames)
	if err := errors.Join(errs...); err != nil {
		return errs, err
	}
	if err := w.lake.finishCommit(context.Background(), w.cat, m); err != nil {
		return errs, err
	}
	if err := os.Remove(filepath.Join(w.tmp, manifestName)); err != nil {
		return errs, err
	}
	return errs, w.lake.dropUploaded(m)
}

// finishCommit registers a flush's files (renamed into place) in their tables, with the files
// they replace and its metadata, in one catalog commit, unless the catalog has it already.
func (l *Lake) finishCommit(ctx context.Context, cat *iceberg.Catalog, m manifest) error {
	if m.Instance == "" {
		return errors.New("flush manifest without a writer instance (written by an older osprey: run osprey lake migrate)")
	}
	done, err := cat.Flushed(ctx, m.Instance)
	if err != nil {
		return err
	}
	if done >= m.Flush {
		return nil
	}
	var changes []iceberg.Change
	at := map[Table]int{}
	change := func(path string) (*iceberg.Change, error) {
		t, err := l.tableOf(path)
		if err != nil {
			return nil, err
		}
		i, ok := at[t]
		if !ok {
			i = len(changes)
			at[t] = i
			changes = append(changes, iceberg.Change{DB: t.DB, Table: t.Name, Properties: m.Props})
		}
		return &changes[i], nil
	}
	for _, r := range m.Renames {
		ch, err := change(r[1])
		if err != nil {
			return err
		}
		ch.Add = append(ch.Add, r[1])
		if l.store != nil {
			ch.Local = append(ch.Local, r[0]) // uploaded, and kept until the commit is done
		}
	}
	for _, p := range m.Deletes {
		ch, err := change(p)
		if err != nil {
			return err
		}
		ch.Remove = append(ch.Remove, p)
	}
	rec := iceberg.Record{Writer: m.Writer, Meta: m.Meta, Instance: m.Instance, Flush: m.Flush}
	if m.Meta != nil && m.Writer == "" {
		return errors.New("BUG: commit metadata of a writer without a name")
	}
	if err := cat.Commit(ctx, changes, rec); err != nil {
		return fmt.Errorf("commit to the iceberg catalog: %w", err)
	}
	return nil
}

// tableOf returns the table whose directory holds a data file.
func (l *Lake) tableOf(path string) (Table, error) {
	var parts []string
	if l.store != nil {
		rel, ok := strings.CutPrefix(path, l.store.Root()+"/")
		if !ok {
			return Table{}, fmt.Errorf("%s is not in the lake %s", path, l.store.Root())
		}
		parts = strings.Split(rel, "/")
	} else {
		rel, err := filepath.Rel(l.dir, path)
		if err != nil {
			return Table{}, err
		}
		parts = strings.Split(rel, string(filepath.Separator))
	}
	if len(parts) < 3 || CheckName(parts[0]) != nil || CheckName(parts[1]) != nil {
		return Table{}, fmt.Errorf("%s is not a data file of a table of the lake", path)
	}
	return Table{DB: parts[0], Name: parts[1]}, nil
}

// finishFlush finishes the flush an interrupted writer left in dir, if any.
func (l *Lake) finishFlush(ctx context.Context, cat *iceberg.Catalog, dir string) error {
	m, ok, err := readManifest(dir)
	if !ok || err != nil {
		return err
	}
	if err := l.placeRest(m); err != nil {
		return err
	}
	if err := l.finishCommit(ctx, cat, m); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, manifestName)); err != nil {
		return err
	}
	return l.dropUploaded(m)
}

// readManifest reads the flush manifest a writer left in its tmp directory dir; ok is false
// when there is none.
func readManifest(dir string) (m manifest, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, false, fmt.Errorf("read %s: %w", filepath.Join(dir, manifestName), err)
	}
	return m, true, nil
}

// placeRest does the renames of a manifest that a crash left undone (those whose file is still
// in tmp). In an object store, where files stay in tmp until the commit is done, it uploads
// them all again: a PUT of the same content is harmless.
func (l *Lake) placeRest(m manifest) error {
	var todo [][2]string
	for _, r := range m.Renames {
		if _, err := os.Stat(r[0]); err == nil {
			todo = append(todo, r)
		} else if l.store != nil {
			return fmt.Errorf("flush manifest names %s, whose local copy is gone", r[0])
		} else if _, err := os.Stat(r[1]); err != nil {
			return fmt.Errorf("flush manifest names %s, which is neither in tmp nor published", r[1])
		}
	}
	return errors.Join(l.placeAll(todo)...)
}

// placeAll puts finished files where their tables are: renamed into place (see renameAll), or
// uploaded to the object store, where they are durable when placeAll returns. It returns each
// file's error.
func (l *Lake) placeAll(renames [][2]string) []error {
	if l.store == nil {
		return renameAll(renames)
	}
	return forEach(len(renames), 8, func(i int) error {
		return l.store.Put(context.Background(), renames[i][1], renames[i][0])
	})
}

// dropUploaded removes the local copies of a committed flush's files in an object store.
func (l *Lake) dropUploaded(m manifest) error {
	if l.store == nil {
		return nil
	}
	var errs []error
	for _, r := range m.Renames {
		if err := os.Remove(r[0]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// forEach calls fn(i) for i in [0, n), at most par at once, and returns each call's error.
func forEach(n, par int, fn func(i int) error) []error {
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(par, n) {
		wg.Go(func() {
			for i := range next {
				errs[i] = fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// renameAll renames files into their partitions, creating directories as needed, a few at once
// (a rename with its new directories takes most of a millisecond on some file systems). It
// returns each rename's error.
func renameAll(renames [][2]string) []error {
	return forEach(len(renames), 8, func(i int) error {
		r := renames[i]
		if err := mkdirAll(filepath.Dir(r[1])); err != nil {
			return err
		}
		return os.Rename(r[0], r[1])
	})
}

// writeFileDurably writes v as JSON to path atomically and durably: a temporary file, fsynced,
// renamed over path, and the directory fsynced.
func writeFileDurably(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return durable.WriteFile(path, b, 0o666)
}

// Recover makes a writer usable again after a Write or Flush failed (a full disk): it finishes
// the flush whose manifest was written, if any, and drops every file not published.
//
// Why this is safe. A flush publishes nothing before its manifest is durable (steps 1 and 2
// above), so a flush that failed before has no visible file and dropping its files loses
// nothing published. Once the manifest is written, some files may already be in their
// partitions (a rename that failed among others that did not, or the metadata that could not
// be written): the flush must then be finished, not undone, and its metadata recorded, as the
// next writer would after a crash. The manifest holds only files that were finished whole and
// every row the flush had (FlushWith publishes nothing when a file could not be finished).
// What is dropped are rows written since the last flush, which the caller writes again (osprey
// serve reads them again from its log, from the position the commit metadata records). While
// the manifest's flush cannot be finished, Recover fails and drops nothing: call it again.
func (w *Writer) Recover() error {
	w.publishMu.Lock()
	defer w.publishMu.Unlock()
	w.inflight.Wait()
	if err := w.lake.finishFlush(context.Background(), w.cat, w.tmp); err != nil {
		return fmt.Errorf("finish the interrupted flush: %w", err)
	}
	w.mu.Lock()
	files, finished := w.files, w.finished
	w.files, w.finished = map[partKey]*partFile{}, nil
	w.mu.Unlock()
	// The files of the flush just finished are no longer in tmp; the rest are dropped.
	remove := func(path string) error {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	var errs []error
	for _, pf := range files {
		errs = append(errs, pf.pq.f.Close(), remove(pf.path))
	}
	for _, f := range finished {
		errs = append(errs, remove(f.tmp))
	}
	// A manifest whose temporary file was written but not renamed into place.
	errs = append(errs, remove(filepath.Join(w.tmp, manifestName+".tmp")))
	return errors.Join(errs...)
}
