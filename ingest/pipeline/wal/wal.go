// Package wal is the write-ahead log of osprey serve. Sources append the records they accept
// and answer their clients only once Append returns, when the records are on disk (fsynced); a
// consumer reads the log in order into the lake; Checkpoint drops what the lake holds: the
// segments before the checkpoint, and the active segment too once it holds nothing after it
// (Checkpoint starts a new segment for the entries that follow). After a crash, what follows
// the last checkpoint is read again.
//
// The log is a directory of segment files named by the sequence number of their first entry
// (%020d.wal). An entry is a frame: length (4 bytes), CRC-32C of the rest (4 bytes), sequence
// number (8 bytes), then the payload: the source, and the records, each length-prefixed, and,
// only when one is set, a trailer: a version byte (1) then the S3 bucket, key and cursor, each
// length-prefixed. Entries without a trailer are read as before it existed, and readers that
// predate it ignore it. Appends
// from many goroutines are written and fsynced together (group commit): one fsync acknowledges
// every entry written before it. A crash can leave a torn frame only at the end of the last
// segment; Open cuts it off (it was never acknowledged). A bad frame anywhere else is corruption
// and Open refuses the log.
//
// A write or fsync that fails (a full disk) fails the appends of its round, and those appended
// meanwhile, and nothing else: the active segment is cut back to its last durable size, the
// sequence numbers of the failed entries are given out again, and the next append tries anew.
// Only when the segment cannot be cut back does the log refuse every later append.
package wal

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/ospreyhq/osprey/durable"
)

// Entry is what a source appends: records of one source.
type Entry struct {
	Source  string
	Records [][]byte
	// Bucket and Key name the S3 object the records were read from (p_source_file), if any.
	Bucket, Key string
	// Cursor is where a pulling source stands once these records are in: written in the same
	// frame as the records, it is durable exactly when they are.
	Cursor string
}

// trailerVersion marks the optional trailer of an entry's payload.
const trailerVersion = 1

// Options configure a Log.
type Options struct {
	// SegmentSize is the size after which a new segment is started; default 64 MiB.
	SegmentSize int64
}

// Errors.
var (
	ErrClosed  = errors.New("write-ahead log is closed")
	ErrCorrupt = errors.New("write-ahead log is corrupt")
)

const (
	frameHeader = 16      // length, CRC, sequence
	maxFrame    = 1 << 30 // a frame longer than this is corruption
	segmentExt  = ".wal"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Log is a write-ahead log. It is safe for concurrent use.
type Log struct {
	dir  string
	opts Options

	mu       sync.Mutex
	cond     *sync.Cond // signalled when synced, written or closed change
	segs     []segment  // every segment, in order; the last is active
	active   *os.File
	buf      []byte // frames appended but not yet written
	next     uint64 // sequence number of the next entry
	synced   uint64 // entries up to synced-1 are durable
	syncing  bool
	closed   bool
	err      error // a failure the log cannot undo: it refuses further appends
	diskSize int64 // bytes in all segments
	roll     bool  // start a new segment before the next write (see Checkpoint)

	// A round that failed to write fails its entries and those appended meanwhile: gen counts
	// such failures, lost is the first sequence number of the last one and lostErr its error.
	gen     uint64
	lost    uint64
	lostErr error
}

type segment struct {
	first uint64 // sequence number of its first entry
	path  string
	size  int64 // bytes durable in it (for the active segment: synced bytes)
}

// Open opens (creating if needed) the log in dir and recovers it.
func Open(dir string, opts Options) (*Log, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 64 << 20
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l := &Log{dir: dir, opts: opts}
	l.cond = sync.NewCond(&l.mu)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segmentExt) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: unexpected file %s", ErrCorrupt, name)
		}
		l.segs = append(l.segs, segment{first: first, path: filepath.Join(dir, name)})
	}
	sort.Slice(l.segs, func(i, j int) bool { return l.segs[i].first < l.segs[j].first })
	// Check every frame; cut a torn one off the end of the last segment.
	for i := range l.segs {
		s := &l.segs[i]
		last := i == len(l.segs)-1
		n, end, err := scan(s.path, s.first, nil)
		switch {
		case err != nil && last && errors.Is(err, errTorn):
			if err := os.Truncate(s.path, end); err != nil {
				return nil, err
			}
		case errors.Is(err, errTorn):
			return nil, fmt.Errorf("%w: %s has a damaged frame at byte %d", ErrCorrupt, s.path, end)
		case err != nil:
			return nil, fmt.Errorf("%s: %w", s.path, err)
		case i+1 < len(l.segs) && s.first+n != l.segs[i+1].first:
			return nil, fmt.Errorf("%w: %s ends at entry %d, the next segment starts at %d",
				ErrCorrupt, s.path, s.first+n, l.segs[i+1].first)
		}
		s.size = end
		l.diskSize += end
		l.next = s.first + n
	}
	if len(l.segs) > 0 {
		l.next = max(l.next, l.segs[len(l.segs)-1].first)
	}
	l.synced = l.next
	if err := l.startSegment(l.next); err != nil {
		return nil, err
	}
	go l.syncer()
	return l, nil
}

// startSegment opens the segment new entries go to: the last one, or a new one starting at
// entry first when there is none or the last is full. Called before the log is shared.
func (l *Log) startSegment(first uint64) error {
	if n := len(l.segs); n > 0 && l.segs[n-1].size < l.opts.SegmentSize {
		f, err := os.OpenFile(l.segs[n-1].path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		l.active = f
		return nil
	}
	return l.newSegment(first)
}

// newSegment starts a new segment for the entries from first on and makes it the active one,
// closing the previous. Called with mu held and no write in progress. On failure the active
// segment stays as it was.
func (l *Log) newSegment(first uint64) error {
	s := segment{first: first, path: filepath.Join(l.dir, fmt.Sprintf("%020d%s", first, segmentExt))}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := durable.SyncDir(l.dir); err != nil {
		f.Close()
		os.Remove(s.path)
		return err
	}
	if l.active != nil {
		l.active.Close()
	}
	l.active = f
	l.segs = append(l.segs, s)
	return nil
}

// rollLocked starts a new segment for the entries not yet written when the active one holds
// any; a failure is left for a later call (the active segment just goes on growing).
func (l *Log) rollLocked() {
	l.roll = false
	if n := len(l.segs); n > 0 && l.segs[n-1].first < l.synced {
		if err := l.newSegment(l.synced); err != nil {
			l.roll = true
		}
	}
}

// Append adds an entry and returns its sequence number once it is durable. It fails when ctx
// is done first (the entry may still become durable) or the log cannot write.
func (l *Log) Append(ctx context.Context, e Entry) (uint64, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return 0, err
	}
	seq, gen := l.next, l.gen
	l.next++
	l.buf = appendFrame(l.buf, seq, e)
	l.cond.Broadcast() // wake the syncer
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	for l.synced <= seq && l.gen == gen && l.err == nil && !l.closed && ctx.Err() == nil {
		l.cond.Wait()
	}
	defer l.mu.Unlock()
	switch {
	case l.gen == gen+1 && seq < l.lost, l.gen == gen && l.synced > seq:
		// Written before the round that failed, or not failed at all.
		return seq, nil
	case l.gen != gen:
		// The entry's round failed (or, after more than one failure since, it may have).
		return 0, l.lostErr
	case l.err != nil:
		return 0, l.err
	case l.closed:
		return 0, ErrClosed
	}
	return 0, ctx.Err()
}

// syncer writes and fsyncs appended frames, many at a time.
func (l *Log) syncer() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for len(l.buf) == 0 && !l.closed {
			l.cond.Wait()
		}
		if len(l.buf) == 0 && l.closed {
			return
		}
		if l.roll {
			l.rollLocked()
		}
		buf, upTo, f := l.buf, l.next, l.active
		l.buf = nil
		l.syncing = true
		l.mu.Unlock()
		_, err := f.Write(buf)
		if err == nil {
			err = f.Sync()
		}
		l.mu.Lock()
		l.syncing = false
		seg := &l.segs[len(l.segs)-1]
		if err != nil {
			if !l.undoLocked(f, seg.size, err) {
				l.cond.Broadcast()
				return
			}
			l.cond.Broadcast()
			continue
		}
		l.synced = upTo
		seg.size += int64(len(buf))
		l.diskSize += int64(len(buf))
		if seg.size >= l.opts.SegmentSize || l.roll {
			// Frames appended meanwhile (in l.buf) start at upTo: they go to the new segment.
			l.rollLocked()
		}
		l.cond.Broadcast()
		// Keep the slice for the next round if it is not too large.
		if cap(buf) <= 4<<20 && l.buf == nil {
			l.buf = buf[:0]
		}
	}
}

// undoLocked handles a round whose write or fsync failed with err: none of its entries, nor
// those appended since (their sequence numbers follow), is acknowledged. The active segment f
// is cut back to its durable size, so that the frames written next follow whole ones: the
// failed round's bytes, which may be partly on disk or (after a failed fsync) in the page cache
// in any state, are gone, and a crash now finds at most a whole frame of an entry that was
// refused, which the next Open reads like any other (unacknowledged entries may be read; they
// are never lost once acknowledged). The sequence numbers are given out again. It reports
// whether the log can go on; if not, l.err refuses every later append.
func (l *Log) undoLocked(f *os.File, durable int64, err error) bool {
	err = fmt.Errorf("write-ahead log: %w", err)
	l.gen++
	l.lost = l.synced
	l.lostErr = err
	l.buf = nil
	l.next = l.synced
	if terr := errors.Join(f.Truncate(durable), f.Sync()); terr != nil {
		l.err = fmt.Errorf("%w (and could not cut the segment back: %v)", err, terr)
		return false
	}
	return true
}

// Next returns the sequence number the next appended entry will get.
func (l *Log) Next() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next
}

// Size returns the bytes of the log on disk.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.diskSize
}

// Checkpoint records that every entry before seq is in the lake: segments holding only such
// entries are removed. The active segment is closed and a new one started (now, or before the
// next write if one is under way), so that what it holds is removed at this checkpoint when
// every entry in it is before seq, or at the next one otherwise: the log keeps what arrived
// since the last checkpoint, not up to a segment's size of entries the lake already holds.
func (l *Log) Checkpoint(seq uint64) error {
	l.mu.Lock()
	if n := len(l.segs); n > 0 && l.segs[n-1].first < l.synced && !l.closed && l.err == nil {
		if l.syncing {
			l.roll = true
		} else {
			l.rollLocked()
		}
	}
	var drop []segment
	for len(l.segs) > 1 && l.segs[1].first <= seq {
		drop = append(drop, l.segs[0])
		l.diskSize -= l.segs[0].size
		l.segs = l.segs[1:]
	}
	l.mu.Unlock()
	var errs []error
	for _, s := range drop {
		errs = append(errs, os.Remove(s.path))
	}
	return errors.Join(errs...)
}

// Close waits for appended entries to be written and closes the log.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	for (len(l.buf) > 0 || l.syncing) && l.err == nil {
		l.cond.Wait()
	}
	l.closed = true
	l.cond.Broadcast()
	err := l.active.Close()
	l.mu.Unlock()
	return err
}

// appendFrame appends an entry's frame.
func appendFrame(b []byte, seq uint64, e Entry) []byte {
	start := len(b)
	b = append(b, make([]byte, frameHeader)...)
	b = binary.AppendUvarint(b, uint64(len(e.Source)))
	b = append(b, e.Source...)
	b = binary.AppendUvarint(b, uint64(len(e.Records)))
	for _, r := range e.Records {
		b = binary.AppendUvarint(b, uint64(len(r)))
		b = append(b, r...)
	}
	if e.Bucket != "" || e.Key != "" || e.Cursor != "" {
		b = append(b, trailerVersion)
		for _, v := range []string{e.Bucket, e.Key, e.Cursor} {
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	frame := b[start:]
	binary.LittleEndian.PutUint32(frame[0:], uint32(len(frame)-8))
	binary.LittleEndian.PutUint64(frame[8:], seq)
	binary.LittleEndian.PutUint32(frame[4:], crc32.Checksum(frame[8:], crcTable))
	return b
}

var errTorn = errors.New("torn frame")

// scan reads a segment's frames, calling fn (if not nil) for each entry from seq from on. It
// returns the entries it holds and the offset after the last whole frame; errTorn (with that
// offset) if the segment ends in a partial or damaged frame.
func scan(path string, first uint64, fn func(seq uint64, e Entry) error) (uint64, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	var n uint64
	var off int64
	var frame []byte
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return n, off, nil
			}
			return n, off, errTorn
		}
		size := binary.LittleEndian.Uint32(hdr[0:])
		sum := binary.LittleEndian.Uint32(hdr[4:])
		// A damaged length is not trusted for more than the file holds: no buffer is made for it.
		if size < 8 || size > maxFrame || off+8+int64(size) > info.Size() {
			return n, off, errTorn
		}
		if cap(frame) < int(size) {
			frame = make([]byte, size)
		}
		frame = frame[:size]
		if _, err := io.ReadFull(r, frame); err != nil {
			return n, off, errTorn
		}
		if crc32.Checksum(frame, crcTable) != sum {
			return n, off, errTorn
		}
		seq := binary.LittleEndian.Uint64(frame)
		if seq != first+n {
			return n, off, fmt.Errorf("%w: entry %d where %d was expected", ErrCorrupt, seq, first+n)
		}
		if fn != nil {
			e, err := decode(frame[8:])
			if err != nil {
				return n, off, err
			}
			if err := fn(seq, e); err != nil {
				return n, off, err
			}
		}
		n++
		off += 8 + int64(size)
	}
}

// decode reads an entry's payload. Its records alias p.
func decode(p []byte) (Entry, error) {
	var e Entry
	next := func() ([]byte, error) {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return nil, fmt.Errorf("%w: bad entry", ErrCorrupt)
		}
		v := p[k : k+int(n)]
		p = p[k+int(n):]
		return v, nil
	}
	src, err := next()
	if err != nil {
		return e, err
	}
	e.Source = string(src)
	count, k := binary.Uvarint(p)
	if k <= 0 || count > uint64(len(p)) {
		return e, fmt.Errorf("%w: bad entry", ErrCorrupt)
	}
	p = p[k:]
	e.Records = make([][]byte, 0, count)
	for range count {
		r, err := next()
		if err != nil {
			return e, err
		}
		e.Records = append(e.Records, r)
	}
	if len(p) == 0 {
		return e, nil
	}
	if p[0] != trailerVersion {
		return e, fmt.Errorf("%w: unknown entry trailer %d", ErrCorrupt, p[0])
	}
	p = p[1:]
	for _, v := range []*string{&e.Bucket, &e.Key, &e.Cursor} {
		f, err := next()
		if err != nil {
			return e, err
		}
		*v = string(f)
	}
	return e, nil
}

// Read calls fn for every durable entry from sequence number from on, in order, including
// entries appended while it runs, until ctx is done (it then returns ctx.Err()), the log is
// closed or fn fails. An entry's records are valid only during fn.
func (l *Log) Read(ctx context.Context, from uint64, fn func(seq uint64, e Entry) error) error {
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	var cur *cursor
	defer func() {
		if cur != nil {
			cur.f.Close()
		}
	}()
	next := from
	for {
		l.mu.Lock()
		for l.synced <= next && ctx.Err() == nil && !l.closed && l.err == nil {
			l.cond.Wait()
		}
		if err := ctx.Err(); err != nil {
			l.mu.Unlock()
			return err
		}
		if l.closed || l.err != nil {
			err := l.err
			l.mu.Unlock()
			return cmp(err, ErrClosed)
		}
		// The segment holding entry next, and how much of it is durable.
		i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first > next }) - 1
		if i < 0 {
			l.mu.Unlock()
			return fmt.Errorf("%w: entry %d was removed before it was read", ErrCorrupt, next)
		}
		seg := l.segs[i]
		last := i == len(l.segs)-1
		l.mu.Unlock()

		if cur == nil || cur.seg.first != seg.first {
			if cur != nil {
				cur.f.Close()
			}
			var err error
			if cur, err = openCursor(seg); err != nil {
				return err
			}
		}
		for cur.off < seg.size {
			seq, e, err := cur.next()
			if err != nil {
				return fmt.Errorf("%s: %w", seg.path, err)
			}
			if seq < next {
				continue // before from, in the first segment read
			}
			if seq != next {
				return fmt.Errorf("%w: %s has entry %d where %d was expected", ErrCorrupt, seg.path, seq, next)
			}
			if err := fn(seq, e); err != nil {
				return err
			}
			next++
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if !last && next < l.nextSegmentFirst(seg.first) {
			return fmt.Errorf("%w: %s ends before entry %d", ErrCorrupt, seg.path, next)
		}
	}
}

// nextSegmentFirst returns the first entry of the segment after the one starting at first.
func (l *Log) nextSegmentFirst(first uint64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, s := range l.segs {
		if s.first == first && i+1 < len(l.segs) {
			return l.segs[i+1].first
		}
	}
	return l.synced
}

// cursor reads a segment's frames in order.
type cursor struct {
	seg   segment
	f     *os.File
	r     *bufio.Reader
	off   int64
	frame []byte
}

func openCursor(s segment) (*cursor, error) {
	f, err := os.Open(s.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: segment %s removed while entries in it were unread", ErrCorrupt, s.path)
		}
		return nil, err
	}
	return &cursor{seg: s, f: f, r: bufio.NewReaderSize(f, 1<<20)}, nil
}

// next reads the frame at the cursor, which the caller knows to be durable.
func (c *cursor) next() (uint64, Entry, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return 0, Entry{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	size := binary.LittleEndian.Uint32(hdr[0:])
	if size < 8 || size > maxFrame {
		return 0, Entry{}, fmt.Errorf("%w: frame of %d bytes", ErrCorrupt, size)
	}
	if cap(c.frame) < int(size) {
		c.frame = make([]byte, size)
	}
	frame := c.frame[:size]
	if _, err := io.ReadFull(c.r, frame); err != nil {
		return 0, Entry{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if crc32.Checksum(frame, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
		return 0, Entry{}, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	c.off += 8 + int64(size)
	e, err := decode(frame[8:])
	return binary.LittleEndian.Uint64(frame), e, err
}

func cmp(err, or error) error {
	if err != nil {
		return err
	}
	return or
}
