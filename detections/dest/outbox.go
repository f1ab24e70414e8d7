package dest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/durable"
)

// OutboxOptions configure an Outbox. Zero fields take their defaults (DefaultOutboxOptions).
type OutboxOptions struct {
	// MaxAttempts is the attempt limit of destinations whose Policy gives none; default 10.
	MaxAttempts int
	// BackoffBase is the wait after a first failed attempt; it doubles with each attempt, up
	// to BackoffCap, and is jittered down by up to half. Defaults 1 s and 5 min.
	BackoffBase time.Duration
	BackoffCap  time.Duration
	// MaxRetryAfter caps the Retry-After a destination asks for; default 10 min.
	MaxRetryAfter time.Duration
	// Logger gets failed attempts and dead letters; default none.
	Logger *slog.Logger
}

// DefaultOutboxOptions returns the defaults of OutboxOptions.
func DefaultOutboxOptions() OutboxOptions {
	return OutboxOptions{
		MaxAttempts:   config.DefaultDestinationMaxAttempts,
		BackoffBase:   time.Second,
		BackoffCap:    5 * time.Minute,
		MaxRetryAfter: 10 * time.Minute,
		Logger:        slog.New(slog.DiscardHandler),
	}
}

// Stats count an Outbox's deliveries to one destination since it was opened (Pending is the
// current number).
type Stats struct {
	Pending      int   // deliveries waiting or being tried
	Sent         int64 // deliveries sent
	Failed       int64 // failed attempts
	DeadLettered int64 // deliveries moved to the dead-letter file
}

// Names in the outbox directory.
const (
	lockName       = "lock"
	pendingDir     = "pending"
	deadLetterName = "dead-letter.jsonl"
	tmpSuffix      = durable.TempSuffix
	corruptSuffix  = ".corrupt"
)

// Log attribute keys.
const (
	logDestination = "destination"
	logDelivery    = "delivery"
	logAttempts    = "attempts"
	logRetryIn     = "retry_in"
	logPending     = "pending"
	logPath        = "path"
	logErr         = "err"
)

// Outbox is a durable queue of deliveries (an alert for a destination) in a directory, and
// their sender. Its methods are safe for concurrent use.
type Outbox struct {
	dir     string
	opts    OutboxOptions
	log     *slog.Logger
	lock    *os.File
	senders map[string]*sender
	ids     []string // of the destinations, sorted
	// wait waits between attempts; tests replace it.
	wait func(ctx context.Context, d time.Duration) error

	enqMu  sync.Mutex // serializes enqueues, so sequence numbers follow the order of the files
	deadMu sync.Mutex // the dead-letter file

	mu      sync.Mutex // guards the fields below and the queues and stats of the senders
	nextSeq uint64
	closed  bool
	running bool
	cancel  context.CancelFunc
	done    chan struct{}
	changed chan struct{} // closed (and replaced) when a queue or the stats change
}

// sender holds the deliveries of one destination.
type sender struct {
	d      Destination
	policy Policy // MaxAttempts set
	dir    string
	wake   chan struct{} // a token when a delivery is queued

	queue []queued        // by sequence number
	ids   map[string]bool // the delivery ids in queue
	stats Stats
}

type queued struct {
	seq uint64
	id  string
}

func (s *sender) path(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d.json", seq))
}

// record is a delivery file.
type record struct {
	ID          string          `json:"id"`
	Destination string          `json:"destination"`
	Seq         uint64          `json:"seq"`
	Attempts    int             `json:"attempts"`
	LastError   string          `json:"lastError,omitempty"`
	EnqueuedAt  time.Time       `json:"enqueuedAt"`
	Alert       json.RawMessage `json:"alert"`
}

// OpenOutbox opens (creating it if needed) the outbox in dir for the destinations dests, which
// must have distinct ids. Deliveries left by a previous process are queued again, in their
// order. Deliveries for a destination not in dests are kept, and logged. An outbox directory
// is used by one Outbox at a time (it holds an flock).
func OpenOutbox(dir string, dests []Destination, opts OutboxOptions) (*Outbox, error) {
	def := DefaultOutboxOptions()
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = def.MaxAttempts
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = def.BackoffBase
	}
	if opts.BackoffCap <= 0 {
		opts.BackoffCap = def.BackoffCap
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = def.MaxRetryAfter
	}
	if opts.Logger == nil {
		opts.Logger = def.Logger
	}
	o := &Outbox{
		dir: dir, opts: opts, log: opts.Logger, senders: map[string]*sender{},
		wait: sleep, nextSeq: 1, changed: make(chan struct{}),
	}
	for _, d := range dests {
		id := d.ID()
		if !config.ValidID(id) {
			return nil, fmt.Errorf("open outbox: destination id %q: want 1 to 64 letters, digits, '_', '.' or '-'", id)
		}
		if o.senders[id] != nil {
			return nil, fmt.Errorf("open outbox: destination id %q is used twice", id)
		}
		var pol Policy
		if p, ok := d.(interface{ Policy() Policy }); ok {
			pol = p.Policy()
		}
		if pol.MaxAttempts <= 0 {
			pol.MaxAttempts = opts.MaxAttempts
		}
		o.senders[id] = &sender{
			d: d, policy: pol, dir: filepath.Join(dir, pendingDir, id),
			wake: make(chan struct{}, 1), ids: map[string]bool{},
		}
		o.ids = append(o.ids, id)
	}
	slices.Sort(o.ids)
	if err := os.MkdirAll(filepath.Join(dir, pendingDir), 0o700); err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open outbox %s: in use by another process (%w)", dir, err)
	}
	o.lock = lock
	if err := o.load(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open outbox %s: %w", dir, err)
	}
	return o, nil
}

// load creates the directories of the destinations and queues the deliveries they hold.
func (o *Outbox) load() error {
	pdir := filepath.Join(o.dir, pendingDir)
	for _, id := range o.ids {
		s := o.senders[id]
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return err
		}
		entries, err := os.ReadDir(s.dir)
		if err != nil {
			return err
		}
		for _, e := range entries { // in name order, which is sequence order
			name := e.Name()
			path := filepath.Join(s.dir, name)
			if strings.HasSuffix(name, tmpSuffix) { // an enqueue or an update that did not finish
				if err := os.Remove(path); err != nil {
					return err
				}
				continue
			}
			seq, ok := parseSeqName(name)
			if !ok {
				continue
			}
			o.nextSeq = max(o.nextSeq, seq+1)
			rec, err := readRecord(path)
			if err != nil {
				o.log.Error("outbox delivery file is damaged; set aside", logPath, path+corruptSuffix, logErr, err)
				if err := os.Rename(path, path+corruptSuffix); err != nil {
					return err
				}
				continue
			}
			s.queue = append(s.queue, queued{seq: seq, id: rec.ID})
			s.ids[rec.ID] = true
		}
	}
	if err := durable.SyncDir(pdir); err != nil {
		return err
	}
	entries, err := os.ReadDir(pdir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if o.senders[e.Name()] != nil || !e.IsDir() {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(pdir, e.Name()))
		n := 0
		for _, f := range files {
			if _, ok := parseSeqName(f.Name()); ok {
				n++
			}
		}
		if n > 0 {
			o.log.Warn("outbox holds deliveries for a destination that is not configured; kept", logDestination, e.Name(), logPending, n)
		}
	}
	return nil
}

func parseSeqName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, ".json")
	if !ok || len(digits) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

// DeadLetterPath returns the path of the outbox's dead-letter file.
func (o *Outbox) DeadLetterPath() string { return filepath.Join(o.dir, deadLetterName) }

// CheckOutputIDs returns an error (wrapping ErrUnknownOutput) naming every id that is not
// one of the outbox's destinations.
func (o *Outbox) CheckOutputIDs(ids []string) error {
	var errs []error
	for _, id := range ids {
		if o.senders[id] == nil {
			errs = append(errs, fmt.Errorf("%w %q (destinations: %s)", ErrUnknownOutput, id, strings.Join(o.ids, ", ")))
		}
	}
	return errors.Join(errs...)
}

// DeliveryID returns the id of an alert's delivery to a destination: the alert id and the
// destination id, and for an alert updated since it was created (escalated, say) the time of
// the update in Unix microseconds, so that each version of an alert is a delivery of its own
// and the same version is always the same delivery.
func DeliveryID(a *alert.Alert, destination string) string {
	id := a.AlertID + "/" + destination
	if a.UpdatedAt.After(a.CreatedAt) {
		id += "/" + strconv.FormatInt(a.UpdatedAt.UnixMicro(), 10)
	}
	return id
}

// Enqueue stores a delivery of a for each of its destinations: those a.OutputIDs names, or
// else every destination whose MinSeverity a reaches. When Enqueue returns nil, the deliveries
// are on disk (synced) and the sender is woken. A delivery whose id (see DeliveryID) is
// already pending is not stored twice.
func (o *Outbox) Enqueue(a *alert.Alert) error {
	if a == nil || a.AlertID == "" {
		return errors.New("enqueue: the alert has no id")
	}
	var targets []*sender
	if len(a.OutputIDs) > 0 {
		if err := o.CheckOutputIDs(a.OutputIDs); err != nil {
			return fmt.Errorf("enqueue alert %s: %w", a.AlertID, err)
		}
		for _, id := range a.OutputIDs {
			if s := o.senders[id]; !slices.Contains(targets, s) {
				targets = append(targets, s)
			}
		}
	} else {
		rank := severityRank(a.Severity)
		for _, id := range o.ids {
			s := o.senders[id]
			// An alert of an unknown severity passes every filter rather than reach nobody.
			if s.policy.MinSeverity == "" || rank < 0 || rank >= severityRank(s.policy.MinSeverity) {
				targets = append(targets, s)
			}
		}
	}
	if len(targets) == 0 {
		return nil
	}
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("enqueue alert %s: %w", a.AlertID, err)
	}
	now := time.Now().UTC()
	items := make([]record, len(targets))
	for i, s := range targets {
		id := s.d.ID()
		items[i] = record{ID: DeliveryID(a, id), Destination: id, EnqueuedAt: now, Alert: body}
	}
	if _, err := o.enqueue(items); err != nil {
		return fmt.Errorf("enqueue alert %s: %w", a.AlertID, err)
	}
	return nil
}

// enqueue writes delivery files (Seq is set here), syncs them and queues them. It returns how
// many it queued: a delivery already pending is skipped.
func (o *Outbox) enqueue(recs []record) (int, error) {
	o.enqMu.Lock()
	defer o.enqMu.Unlock()
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return 0, ErrClosed
	}
	todo := recs[:0:0]
	seen := map[string]bool{}
	for _, r := range recs {
		if o.senders[r.Destination].ids[r.ID] || seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		r.Seq = o.nextSeq
		o.nextSeq++
		todo = append(todo, r)
	}
	o.mu.Unlock()

	var written []record
	var errs []error
	dirs := map[string]bool{}
	for _, r := range todo {
		s := o.senders[r.Destination]
		if err := writeRecord(s.path(r.Seq), &r); err != nil {
			errs = append(errs, err)
			continue
		}
		written = append(written, r)
		dirs[s.dir] = true
	}
	for dir := range dirs {
		errs = append(errs, durable.SyncDir(dir))
	}
	// Queue what was written even if something failed: it is on disk, and would be sent after
	// a restart anyway; queued, it is skipped if the caller tries again.
	o.mu.Lock()
	for _, r := range written {
		s := o.senders[r.Destination]
		s.queue = append(s.queue, queued{seq: r.Seq, id: r.ID})
		s.ids[r.ID] = true
	}
	o.notifyLocked()
	o.mu.Unlock()
	for _, r := range written {
		select {
		case o.senders[r.Destination].wake <- struct{}{}:
		default:
		}
	}
	return len(written), errors.Join(errs...)
}

// notifyLocked tells waitUntil that something changed; o.mu is held.
func (o *Outbox) notifyLocked() {
	close(o.changed)
	o.changed = make(chan struct{})
}

// Run sends the queued deliveries until ctx is done or the Outbox is closed, each destination
// in its own goroutine and in enqueue order. It may be called once.
func (o *Outbox) Run(ctx context.Context) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return ErrClosed
	}
	if o.running {
		o.mu.Unlock()
		return errors.New("outbox: Run was already called")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o.running, o.cancel, o.done = true, cancel, make(chan struct{})
	done := o.done
	o.mu.Unlock()
	defer close(done)

	var wg sync.WaitGroup
	for _, s := range o.senders {
		wg.Go(func() { o.send(ctx, s) })
	}
	wg.Wait()
	return nil
}

// send sends the deliveries of one destination until ctx is done.
func (o *Outbox) send(ctx context.Context, s *sender) {
	for {
		o.mu.Lock()
		var q queued
		ok := len(s.queue) > 0
		if ok {
			q = s.queue[0]
		}
		o.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		if !o.deliver(ctx, s, q) {
			return
		}
	}
}

// deliver tries a delivery until it is sent or dead-lettered (true) or ctx is done (false).
func (o *Outbox) deliver(ctx context.Context, s *sender, q queued) bool {
	path := s.path(q.seq)
	rec, err := readRecord(path)
	var a alert.Alert
	if err == nil {
		err = json.Unmarshal(rec.Alert, &a)
	}
	if err != nil {
		// It was whole when queued; something else damaged it.
		o.log.Error("outbox delivery file is damaged; set aside", logDestination, s.d.ID(), logPath, path+corruptSuffix, logErr, err)
		if err := os.Rename(path, path+corruptSuffix); err != nil {
			o.log.Error("set aside a damaged delivery file", logPath, path, logErr, err)
		}
		o.dequeue(s, q, func(*Stats) {})
		return true
	}
	permanent := false
	for rec.Attempts < s.policy.MaxAttempts && !permanent {
		err := s.d.Send(ctx, &a, rec.ID)
		if err == nil {
			if err := os.Remove(path); err != nil {
				o.log.Error("remove a sent delivery (it will be sent again after a restart)", logDelivery, rec.ID, logErr, err)
			}
			o.dequeue(s, q, func(st *Stats) { st.Sent++ })
			return true
		}
		if ctx.Err() != nil {
			return false // an attempt cut short by a shutdown does not count
		}
		rec.Attempts++
		rec.LastError = err.Error()
		permanent = errors.Is(err, ErrPermanent)
		o.count(s, func(st *Stats) { st.Failed++ })
		if permanent || rec.Attempts >= s.policy.MaxAttempts {
			break
		}
		if err := writeRecord(path, rec); err != nil {
			o.log.Warn("record a failed attempt", logDelivery, rec.ID, logErr, err)
		} else if err := durable.SyncDir(s.dir); err != nil {
			o.log.Warn("record a failed attempt", logDelivery, rec.ID, logErr, err)
		}
		delay := o.backoff(rec.Attempts, retryAfter(err))
		o.log.Warn("alert delivery failed; will retry", logDestination, s.d.ID(), logDelivery, rec.ID,
			logAttempts, rec.Attempts, logRetryIn, delay.String(), logErr, err)
		if o.wait(ctx, delay) != nil {
			return false
		}
	}
	dl := DeadLetter{
		DeliveryID: rec.ID, Destination: s.d.ID(), Attempts: rec.Attempts, LastError: rec.LastError,
		EnqueuedAt: rec.EnqueuedAt, DeadLetteredAt: time.Now().UTC(), Alert: rec.Alert,
	}
	for {
		err := o.appendDeadLetter(&dl)
		if err == nil {
			break
		}
		o.log.Error("write the dead-letter file", logPath, o.DeadLetterPath(), logDelivery, rec.ID, logErr, err)
		if o.wait(ctx, o.opts.BackoffCap) != nil {
			return false
		}
	}
	o.log.Error("alert delivery failed; dead-lettered", logDestination, s.d.ID(), logDelivery, rec.ID,
		logAttempts, rec.Attempts, logErr, rec.LastError)
	if err := os.Remove(path); err != nil {
		o.log.Error("remove a dead-lettered delivery", logDelivery, rec.ID, logErr, err)
	}
	o.dequeue(s, q, func(st *Stats) { st.DeadLettered++ })
	return true
}

// backoff returns the wait after a delivery's attempts-th failed attempt: exponential with
// jitter, and at least the Retry-After the destination asked for (capped).
func (o *Outbox) backoff(attempts int, retryAfter time.Duration) time.Duration {
	d := o.opts.BackoffCap
	if n := attempts - 1; n < 40 {
		if b := o.opts.BackoffBase << n; b > 0 && b < d {
			d = b
		}
	}
	d = d/2 + rand.N(d/2+1)
	if retryAfter > 0 {
		d = max(d, min(retryAfter, o.opts.MaxRetryAfter))
	}
	return d
}

// dequeue removes the head of a sender's queue and updates its stats.
func (o *Outbox) dequeue(s *sender, q queued, update func(*Stats)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(s.queue) == 0 || s.queue[0] != q {
		panic("BUG: the delivery sent is not the head of its queue")
	}
	s.queue = s.queue[1:]
	delete(s.ids, q.id)
	update(&s.stats)
	o.notifyLocked()
}

func (o *Outbox) count(s *sender, update func(*Stats)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	update(&s.stats)
	o.notifyLocked()
}

// Stats returns the stats of every destination, by id.
func (o *Outbox) Stats() map[string]Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.statsLocked()
}

func (o *Outbox) statsLocked() map[string]Stats {
	m := make(map[string]Stats, len(o.senders))
	for id, s := range o.senders {
		st := s.stats
		st.Pending = len(s.queue)
		m[id] = st
	}
	return m
}

// WaitIdle waits until no delivery is pending (each was sent or dead-lettered), or ctx is done.
func (o *Outbox) WaitIdle(ctx context.Context) error {
	return o.waitUntil(ctx, func(m map[string]Stats) bool {
		for _, st := range m {
			if st.Pending > 0 {
				return false
			}
		}
		return true
	})
}

// waitUntil waits until cond holds for the stats, or ctx is done.
func (o *Outbox) waitUntil(ctx context.Context, cond func(map[string]Stats) bool) error {
	for {
		o.mu.Lock()
		ok, ch := cond(o.statsLocked()), o.changed
		o.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops Run (an attempt in progress is abandoned and made again after a restart), waits
// for it to return and releases the directory. Pending deliveries stay on disk.
func (o *Outbox) Close() error {
	o.enqMu.Lock()
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		o.enqMu.Unlock()
		return nil
	}
	o.closed = true
	cancel, done := o.cancel, o.done
	o.mu.Unlock()
	o.enqMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return o.lock.Close()
}

func readRecord(path string) (*record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.ID == "" || len(r.Alert) == 0 {
		return nil, errors.New("no delivery id or alert")
	}
	return &r, nil
}

// writeRecord replaces a delivery file by way of a synced temporary file. The caller syncs the
// directory.
func writeRecord(path string, r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := durable.Create(path, 0o600)
	if err != nil {
		return fmt.Errorf("write delivery file: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write delivery file: %w", err)
	}
	if err := f.Replace(); err != nil {
		return fmt.Errorf("write delivery file: %w", err)
	}
	return nil
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
