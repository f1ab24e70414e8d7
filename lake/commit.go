package lake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/ospreyhq/osprey/durable"
)

// A flush is published as one unit. Its files were finished in the writer's tmp directory; then
//
//  1. syncfs makes their data durable;
//  2. a manifest (the renames to do and the flush's metadata) is written to the tmp directory,
//     durably;
//  3. the files are renamed into their partitions;
//  4. syncfs makes the renames durable;
//  5. the metadata, if any, is recorded in _osprey/commits/<writer name>.json;
//  6. the manifest is removed.
//
// A writer that opens the lake finishes the flush of a crashed writer whose manifest it finds
// (steps 3 to 6 again; renames already done are skipped) before it removes that writer's other
// files, which were never visible. So a flush is visible whole or not at all, and its metadata
// is recorded exactly when its files are visible: osprey serve records there how far its
// write-ahead log is in the lake, and a restart replays what is not.

const manifestName = "manifest.json"

// manifest is a flush (or compaction) being published.
type manifest struct {
	Writer  string            `json:"writer,omitempty"`
	Renames [][2]string       `json:"renames"`           // tmp, dst
	Deletes []string          `json:"deletes,omitempty"` // files the new ones replace (compaction)
	Meta    map[string]string `json:"meta,omitempty"`
}

// CommitMeta returns the metadata of the last flush of the writer named name (see
// Writer.FlushWith), or nil if it has none yet.
func (l *Lake) CommitMeta(name string) (map[string]string, error) {
	b, err := os.ReadFile(l.commitFile(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var meta map[string]string
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("read commit metadata of %s: %w", name, err)
	}
	return meta, nil
}

func (l *Lake) commitFile(name string) string {
	return filepath.Join(l.dir, "_osprey", "commits", name+".json")
}

// publish makes files (finished in the tmp directory) durable and visible in one unit, with the
// metadata. It returns the files renamed and the first error; files not renamed stay in tmp.
func (w *Writer) publish(files []finishedFile, meta map[string]string) ([]bool, error) {
	done := make([]bool, len(files))
	if len(files) == 0 && meta == nil {
		return done, nil
	}
	m := manifest{Writer: w.opts.Name, Meta: meta}
	for _, f := range files {
		m.Renames = append(m.Renames, [2]string{f.tmp, f.dst})
	}
	errs, err := w.publishManifest(m)
	for i := range done {
		done[i] = errs == nil || errs[i] == nil
	}
	return done, err
}

// publishManifest publishes a manifest's renames and removals as one unit (see the top of the
// file). On a failed rename it returns each rename's error, and the manifest stays for the
// next writer (or a later flush of this one) to finish.
func (w *Writer) publishManifest(m manifest) ([]error, error) {
	if err := syncFS(w.tmp); err != nil {
		return nil, fmt.Errorf("sync %s: %w", w.tmp, err)
	}
	if err := writeFileDurably(filepath.Join(w.tmp, manifestName), m); err != nil {
		return nil, fmt.Errorf("write flush manifest: %w", err)
	}
	errs := renameAll(m.Renames)
	if err := errors.Join(errs...); err != nil {
		return errs, err
	}
	if err := w.lake.finishCommit(m); err != nil {
		return errs, err
	}
	return errs, os.Remove(filepath.Join(w.tmp, manifestName))
}

// finishCommit makes a flush's renames durable, removes the files they replace and records its
// metadata.
func (l *Lake) finishCommit(m manifest) error {
	if err := syncFS(l.dir); err != nil {
		return fmt.Errorf("sync %s: %w", l.dir, err)
	}
	if len(m.Deletes) > 0 {
		for _, p := range m.Deletes {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		if err := syncFS(l.dir); err != nil {
			return fmt.Errorf("sync %s: %w", l.dir, err)
		}
	}
	if m.Meta == nil {
		return nil
	}
	if m.Writer == "" {
		return errors.New("BUG: commit metadata of a writer without a name")
	}
	if err := os.MkdirAll(filepath.Dir(l.commitFile(m.Writer)), 0o755); err != nil {
		return err
	}
	if err := writeFileDurably(l.commitFile(m.Writer), m.Meta); err != nil {
		return fmt.Errorf("record commit metadata: %w", err)
	}
	return nil
}

// finishFlush finishes the flush an interrupted writer left in dir, if any.
func (l *Lake) finishFlush(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("read %s: %w", filepath.Join(dir, manifestName), err)
	}
	var todo [][2]string
	for _, r := range m.Renames {
		if _, err := os.Stat(r[0]); err == nil {
			todo = append(todo, r)
		} else if _, err := os.Stat(r[1]); err != nil {
			return fmt.Errorf("flush manifest names %s, which is neither in tmp nor published", r[1])
		}
	}
	if err := errors.Join(renameAll(todo)...); err != nil {
		return err
	}
	if err := l.finishCommit(m); err != nil {
		return err
	}
	return os.Remove(filepath.Join(dir, manifestName))
}

// renameAll renames files into their partitions, creating directories as needed, a few at once
// (a rename with its new directories takes most of a millisecond on some file systems). It
// returns each rename's error.
func renameAll(renames [][2]string) []error {
	errs := make([]error, len(renames))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(8, len(renames)) {
		wg.Go(func() {
			for i := range next {
				r := renames[i]
				if errs[i] = mkdirAll(filepath.Dir(r[1])); errs[i] == nil {
					errs[i] = os.Rename(r[0], r[1])
				}
			}
		})
	}
	for i := range renames {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
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
	if err := w.lake.finishFlush(w.tmp); err != nil {
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
