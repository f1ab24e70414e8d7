package alert

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ospreyhq/osprey/durable"
)

// A Store keeps every alert and the state of each dedup group, durably, in a directory:
//
//	lock           held (flock) by the one process whose detections raise alerts
//	journal.jsonl  every change, one JSON object per line, fsynced before it takes effect
//	snapshot.json  the state at the start of the journal (written when the journal grows)
//	requests.jsonl resolutions asked for by other processes (osprey alerts resolve)
//
// # Groups, windows and thresholds
//
// Matches of a rule with the same dedup string form a group. A group's window starts with its
// first match and lasts the rule's dedup period; a match after the window, or after the group's
// alert was resolved, starts a new group. A group raises its alert when its matches reach the
// rule's threshold; later matches in the window update the alert's counts.
//
// # Exactly once with the lake
//
// Streaming matches are counted in epochs that follow the lake's flushes: matches since the
// last flush are pending; Prepare journals them under a new epoch number, which the flush
// records in its commit metadata; Commit applies them after the flush. If the process dies
// between the two, the next Open asks the lake whether the flush happened (the epoch in its
// commit metadata) and applies or drops the epoch. Dropped matches come back when the ingest
// log is replayed, so every match is counted once.
//
// Raising an alert cannot wait for a flush (detections must alert within seconds): a raise is
// journaled (fsynced) before the alert is handed to destinations. After a crash, replayed
// matches find the group and its raised alert, so an alert is raised once.
type Store struct {
	dir  string
	lock *os.File

	mu      sync.Mutex
	journal *os.File
	size    int64 // bytes in the journal
	st      state
	// pending, changed and the prepared epochs are kept per lane: the streaming engine counts in
	// the lane "", each scheduled query's runs in a lane of their own, and each lane's matches
	// are committed with its own writer's flushes.
	pending map[string]map[string]*delta // lane -> matches not yet prepared, by alert id
	changed map[string]map[string]bool   // lane -> alerts changed since its last Prepare
	prep    map[uint64]*prepared         // the prepared epochs awaiting Commit, by epoch
	now     func() time.Time
}

type groupKey struct{ Rule, Dedup string }

// group is the state of one dedup group.
type group struct {
	Rule      string        `json:"rule"`
	Dedup     string        `json:"dedup"`
	AlertID   string        `json:"alertId"`
	Start     time.Time     `json:"start"`
	Period    time.Duration `json:"period"`
	Threshold int64         `json:"threshold"`
	Events    int64         `json:"events"` // committed matches in the window
	Raised    bool          `json:"raised"`
}

func (g *group) key() groupKey { return groupKey{g.Rule, g.Dedup} }

// state is what the journal and the snapshot hold.
type state struct {
	Epoch  uint64              `json:"epoch"` // the last epoch prepared
	Alerts map[string]*Alert   `json:"alerts"`
	Groups map[groupKey]*group `json:"-"`
	// GroupList is Groups as written in the snapshot (JSON objects cannot have struct keys).
	GroupList []*group `json:"groups"`
	// Unnotified holds the ids of alerts raised and not yet handed to destinations.
	Unnotified map[string]bool `json:"unnotified,omitempty"`
}

// delta is the matches of one group in an epoch.
type delta struct {
	Group   group     `json:"group"`
	Events  int64     `json:"events"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	Updated time.Time `json:"updated"`
}

type prepared struct {
	Epoch  uint64   `json:"epoch"`
	Writer string   `json:"writer"`
	Deltas []*delta `json:"deltas"`
	lane   string   // the lane it was prepared from (not journaled: Open settles by writer)
}

// record is a line of the journal.
type record struct {
	Op       string    `json:"op"`
	Alert    *Alert    `json:"alert,omitempty"`    // raise
	Group    *group    `json:"group,omitempty"`    // raise
	Prepared *prepared `json:"prepared,omitempty"` // prepare
	Epoch    uint64    `json:"epoch,omitempty"`    // commit, abort
	ID       string    `json:"id,omitempty"`       // resolve
	By       string    `json:"by,omitempty"`       // resolve
	At       time.Time `json:"at,omitzero"`        // resolve
}

// Journal operations.
const (
	opRaise   = "raise"
	opPrepare = "prepare"
	opCommit  = "commit"
	opAbort   = "abort"
	opResolve = "resolve"
	opNotify  = "notified"
)

// snapshotAfter is the journal size past which Commit rewrites the snapshot.
const snapshotAfter = 16 << 20

// ErrLocked means another process holds the store (its detections are running).
var ErrLocked = errors.New("the alert store is in use by another osprey process")

// CommittedEpoch tells, at Open, the last epoch a writer's flushes committed (0 if none).
type CommittedEpoch func(writer string) (uint64, error)

// Open opens the store in dir for raising alerts, creating it if needed. Only one process can
// hold it (ErrLocked otherwise). committed settles an epoch left prepared by a process that
// died before committing it.
func Open(dir string, committed CommittedEpoch) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	s := &Store{dir: dir, lock: lock, pending: map[string]map[string]*delta{}, changed: map[string]map[string]bool{},
		prep: map[uint64]*prepared{}, now: time.Now}
	st, open, size, err := load(dir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	s.st, s.size = st, size
	if s.journal, err = os.OpenFile(filepath.Join(dir, "journal.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		lock.Close()
		return nil, err
	}
	// Settle epochs a crashed process prepared: applied if its flush committed them, dropped
	// if not. The decision is journaled, so that a later epoch of the same writer is not
	// mistaken for it.
	for _, p := range open {
		ok := false
		if committed != nil {
			last, err := committed(p.Writer)
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("alert store: epoch %d of %s: %w", p.Epoch, p.Writer, err)
			}
			ok = last >= p.Epoch
		}
		op := opAbort
		if ok {
			op = opCommit
		}
		if err := s.append(record{Op: op, Epoch: p.Epoch}, true); err != nil {
			s.Close()
			return nil, err
		}
		if ok {
			s.st.apply(p)
		}
	}
	if err := s.takeRequests(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// load reads the snapshot and the journal: the state, the epochs prepared and not settled, and
// the journal's size.
func load(dir string) (state, []*prepared, int64, error) {
	st := state{Alerts: map[string]*Alert{}, Groups: map[groupKey]*group{}, Unnotified: map[string]bool{}}
	data, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &st); err != nil {
			return st, nil, 0, fmt.Errorf("alert store snapshot: %w", err)
		}
		if st.Alerts == nil {
			st.Alerts = map[string]*Alert{}
		}
		if st.Unnotified == nil {
			st.Unnotified = map[string]bool{}
		}
		st.Groups = map[groupKey]*group{}
		for _, g := range st.GroupList {
			st.Groups[g.key()] = g
		}
		st.GroupList = nil
	case !errors.Is(err, fs.ErrNotExist):
		return st, nil, 0, err
	}
	f, err := os.Open(filepath.Join(dir, "journal.jsonl"))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil, 0, nil
	}
	if err != nil {
		return st, nil, 0, err
	}
	defer f.Close()
	open := map[uint64]*prepared{}
	r := bufio.NewReader(f)
	var good int64 // the end of the last whole line
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			break // a torn last line (no newline) is cut below
		}
		if err != nil {
			return st, nil, 0, err
		}
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil {
			return st, nil, 0, fmt.Errorf("alert journal, at byte %d: %w", good, err)
		}
		good += int64(len(line))
		switch rec.Op {
		case opRaise:
			st.Alerts[rec.Alert.AlertID] = rec.Alert
			st.Groups[rec.Group.key()] = rec.Group
			st.Unnotified[rec.Alert.AlertID] = true
		case opNotify:
			delete(st.Unnotified, rec.ID)
		case opPrepare:
			open[rec.Prepared.Epoch] = rec.Prepared
			st.Epoch = max(st.Epoch, rec.Prepared.Epoch)
		case opCommit:
			if p := open[rec.Epoch]; p != nil {
				st.apply(p)
			}
			delete(open, rec.Epoch)
		case opAbort:
			delete(open, rec.Epoch)
		case opResolve:
			st.resolve(rec.ID, rec.By, rec.At)
		default:
			return st, nil, 0, fmt.Errorf("alert journal, at byte %d: unknown operation %q", good, rec.Op)
		}
	}
	if err := os.Truncate(f.Name(), good); err != nil {
		return st, nil, 0, err
	}
	var list []*prepared
	for _, p := range open {
		list = append(list, p)
	}
	slices.SortFunc(list, func(a, b *prepared) int { return int(a.Epoch) - int(b.Epoch) })
	return st, list, good, nil
}

// apply adds an epoch's matches to the groups and alerts.
func (st *state) apply(p *prepared) {
	for _, d := range p.Deltas {
		k := d.Group.key()
		a := st.Alerts[d.Group.AlertID]
		if a != nil {
			a.addEvents(d.Events, d.First, d.Last, d.Updated)
		}
		g := st.Groups[k]
		if g != nil && g.AlertID != d.Group.AlertID && !g.Start.Before(d.Group.Start) {
			continue // a newer group has replaced this one
		}
		if g == nil || g.AlertID != d.Group.AlertID {
			ng := d.Group
			ng.Events, ng.Raised = 0, a != nil
			g = &ng
			st.Groups[k] = g
		}
		g.Events += d.Events
	}
}

func (a *Alert) addEvents(n int64, first, last, updated time.Time) {
	a.Events += n
	if a.FirstEvent.IsZero() || (!first.IsZero() && first.Before(a.FirstEvent)) {
		a.FirstEvent = first
	}
	if last.After(a.LastEvent) {
		a.LastEvent = last
	}
	if updated.After(a.UpdatedAt) {
		a.UpdatedAt = updated
	}
}

func (st *state) resolve(id, by string, at time.Time) bool {
	a := st.Alerts[id]
	if a == nil || a.Status == StatusResolved {
		return false
	}
	a.Status, a.ResolvedAt, a.ResolvedBy = StatusResolved, at, by
	a.UpdatedAt = at
	return true
}

// append writes a record to the journal, fsyncing it when sync is set.
func (s *Store) append(r record, sync bool) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	if _, err := s.journal.Write(line); err != nil {
		return fmt.Errorf("alert journal: %w", err)
	}
	s.size += int64(len(line))
	if sync {
		if err := s.journal.Sync(); err != nil {
			return fmt.Errorf("alert journal: %w", err)
		}
	}
	return nil
}

// Close releases the store. Pending matches not prepared are dropped (they come back with the
// replay of the ingest log).
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.journal != nil {
		err = s.journal.Close()
		s.journal = nil
	}
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close())
		s.lock = nil
	}
	return err
}

// Rule is what a store needs to know of the rule of a match.
type Rule struct {
	ID          string
	Type        string // TypeRule or TypeScheduledRule
	Name        string
	Severity    string
	DedupPeriod time.Duration
	Threshold   int64
	LogTypes    []string
	Description string
	Runbook     string
	Reference   string
	Tags        []string
	Reports     map[string][]string
	OutputIDs   []string
}

// Match is one match of a rule.
type Match struct {
	Dedup     string // the dedup string; the store uses DefaultDedup(rule) when empty
	Title     string // empty: the rule's name
	Severity  string // empty: the rule's severity
	EventTime time.Time
	Context   json.RawMessage
	// Sample renders the matched row as a JSON object; it is called only for a match that
	// raises an alert. Nil: the alert has no sample.
	Sample func() json.RawMessage
}

// DefaultDedup is the dedup string of matches without alert_dedup, as Panther spells it.
func DefaultDedup(ruleID string) string { return "defaultDedupString:" + ruleID }

// Assignment tells which alert a match belongs to, for the p_alert_* columns of the match.
type Assignment struct {
	AlertID  string
	Created  time.Time // the start of the group (the alert's creation time once raised)
	Updated  time.Time
	Severity string
}

// Add counts matches of a rule and returns the alert of each, and the alerts this raised: they
// are journaled when Add returns, durable after Sync (or at once when commit is set), and the
// caller hands them to destinations then. The matches stay pending until Prepare and Commit,
// unless commit is set (matches that are not written to the lake), in which case they are
// counted at once.
func (s *Store) Add(r *Rule, matches []Match, commit bool) ([]Assignment, []*Alert, error) {
	return s.AddTo("", r, matches, commit)
}

// AddTo is Add in a lane: its matches are prepared by PrepareLane of the same lane, so that
// several writers (the streaming engine, scheduled queries) each commit their own matches
// with their own flushes.
func (s *Store) AddTo(lane string, r *Rule, matches []Match, commit bool) ([]Assignment, []*Alert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return nil, nil, errors.New("alert store is closed")
	}
	now := s.now().UTC()
	out := make([]Assignment, len(matches))
	var raised []*Alert
	if s.pending[lane] == nil {
		s.pending[lane] = map[string]*delta{}
	}
	if s.changed[lane] == nil {
		s.changed[lane] = map[string]bool{}
	}
	pending := s.pending[lane]
	if commit {
		pending = map[string]*delta{}
	}
	for i := range matches {
		m := &matches[i]
		dedup := m.Dedup
		if dedup == "" {
			dedup = DefaultDedup(r.ID)
		}
		k := groupKey{r.ID, dedup}
		g := s.st.Groups[k]
		if g == nil || !now.Before(g.Start.Add(g.Period)) || s.resolved(g) {
			g = &group{Rule: r.ID, Dedup: dedup, AlertID: newID(), Start: now, Period: r.DedupPeriod, Threshold: max(r.Threshold, 1)}
			s.st.Groups[k] = g
		}
		d := pending[g.AlertID]
		if d == nil {
			d = &delta{Group: *g}
			d.Group.Events = 0
			pending[g.AlertID] = d
		}
		d.Events++
		if d.First.IsZero() || m.EventTime.Before(d.First) {
			d.First = m.EventTime
		}
		if m.EventTime.After(d.Last) {
			d.Last = m.EventTime
		}
		d.Updated = now
		sev := r.Severity
		if m.Severity != "" {
			sev = m.Severity
		}
		if !g.Raised && g.Events+d.Events >= g.Threshold {
			// The alert holds the group's committed matches; this epoch's are added when it
			// commits. Destinations are told of all of them.
			a := s.newAlert(r, g, m, sev, now)
			a.Events = g.Events
			g.Raised = true
			if err := s.append(record{Op: opRaise, Alert: a, Group: g}, commit); err != nil {
				g.Raised = false
				return nil, nil, err
			}
			s.st.Alerts[a.AlertID] = a
			s.st.Unnotified[a.AlertID] = true
			cp := *a
			cp.addEvents(d.Events, d.First, d.Last, now)
			raised = append(raised, &cp)
		}
		if a := s.st.Alerts[g.AlertID]; a != nil {
			sev = a.Severity
		}
		s.changed[lane][g.AlertID] = true
		out[i] = Assignment{AlertID: g.AlertID, Created: g.Start, Updated: now, Severity: sev}
	}
	if commit && len(pending) > 0 {
		s.st.Epoch++
		p := &prepared{Epoch: s.st.Epoch, Writer: "", Deltas: mapValues(pending)}
		if err := s.append(record{Op: opPrepare, Prepared: p}, false); err != nil {
			return nil, nil, err
		}
		if err := s.append(record{Op: opCommit, Epoch: p.Epoch}, true); err != nil {
			return nil, nil, err
		}
		s.st.apply(p)
	}
	return out, raised, nil
}

func (s *Store) resolved(g *group) bool {
	a := s.st.Alerts[g.AlertID]
	return a != nil && a.Status == StatusResolved
}

func (s *Store) newAlert(r *Rule, g *group, m *Match, sev string, now time.Time) *Alert {
	title := m.Title
	if title == "" {
		title = cmpOr(r.Name, r.ID)
	}
	return &Alert{
		AlertID: g.AlertID, Type: cmpOr(r.Type, TypeRule), RuleID: r.ID, RuleName: r.Name,
		Title: title, Severity: sev, Dedup: g.Dedup, LogTypes: r.LogTypes,
		Description: r.Description, Runbook: r.Runbook, Reference: r.Reference,
		Tags: r.Tags, Reports: r.Reports, OutputIDs: r.OutputIDs,
		Status: StatusOpen, CreatedAt: now, UpdatedAt: now, DedupPeriod: g.Period,
		Context: m.Context, Sample: sample(m),
	}
}

func sample(m *Match) json.RawMessage {
	if m.Sample == nil {
		return nil
	}
	return m.Sample()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func mapValues(m map[string]*delta) []*delta {
	out := make([]*delta, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *delta) int {
		return strings.Compare(a.Group.Rule+"\x00"+a.Group.Dedup, b.Group.Rule+"\x00"+b.Group.Dedup)
	})
	return out
}

// Sync makes what was journaled durable: the raises of Add.
func (s *Store) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return errors.New("alert store is closed")
	}
	if err := s.journal.Sync(); err != nil {
		return fmt.Errorf("alert journal: %w", err)
	}
	return nil
}

// Prepare journals the pending matches as a new epoch and returns its number, to be recorded
// in the commit metadata of the flush that writes the matches (writer is the flush's writer).
// It also returns the alerts changed since the last Prepare as they will be once the epoch is
// committed (for the lake's alert history). Commit or Abort must follow.
func (s *Store) Prepare(writer string) (uint64, []Alert, error) {
	return s.PrepareLane("", writer)
}

// PrepareLane is Prepare of a lane's matches (see AddTo).
func (s *Store) PrepareLane(lane, writer string) (uint64, []Alert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.prep {
		if p.lane == lane {
			return 0, nil, errors.New("alert store: Prepare before the previous epoch was settled")
		}
	}
	if err := s.takeRequestsLocked(); err != nil {
		return 0, nil, err
	}
	s.st.Epoch++
	p := &prepared{Epoch: s.st.Epoch, Writer: writer, Deltas: mapValues(s.pending[lane]), lane: lane}
	if err := s.append(record{Op: opPrepare, Prepared: p}, true); err != nil {
		s.st.Epoch--
		return 0, nil, err
	}
	s.prep[p.Epoch] = p
	delete(s.pending, lane)
	// The alerts as the commit will leave them.
	var changed []Alert
	adds := map[string]*delta{}
	for _, d := range p.Deltas {
		adds[d.Group.AlertID] = d
	}
	for id := range s.changed[resolvedLane] {
		if s.changed[lane] == nil {
			s.changed[lane] = map[string]bool{}
		}
		s.changed[lane][id] = true
	}
	delete(s.changed, resolvedLane)
	for id := range s.changed[lane] {
		a := s.st.Alerts[id]
		if a == nil {
			continue // a group below its threshold
		}
		cp := *a
		if d := adds[id]; d != nil {
			cp.addEvents(d.Events, d.First, d.Last, d.Updated)
		}
		changed = append(changed, cp)
	}
	delete(s.changed, lane)
	slices.SortFunc(changed, func(a, b Alert) int { return strings.Compare(a.AlertID, b.AlertID) })
	return p.Epoch, changed, nil
}

// Commit applies the prepared epoch: its flush committed.
func (s *Store) Commit(epoch uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.prep[epoch]
	if p == nil {
		return fmt.Errorf("alert store: commit of epoch %d, which is not a prepared one", epoch)
	}
	delete(s.prep, epoch)
	// Not fsynced: if the line is lost, Open asks the lake again.
	if err := s.append(record{Op: opCommit, Epoch: epoch}, false); err != nil {
		return err
	}
	s.st.apply(p)
	if s.size > snapshotAfter && len(s.prep) == 0 {
		return s.snapshot()
	}
	return nil
}

// ForgetPending drops the matches counted in a lane since its last PrepareLane: the rows they
// came from were lost before their flush (a failed write) and are read again from the ingest
// log, which counts them anew. Alerts they raised stay raised; the matches read again join
// them.
func (s *Store) ForgetPending(lane string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, lane)
}

// Abort drops the prepared epoch: its flush failed. Its matches come back with the replay of
// the ingest log.
func (s *Store) Abort(epoch uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prep[epoch] == nil {
		return nil
	}
	delete(s.prep, epoch)
	return s.append(record{Op: opAbort, Epoch: epoch}, true)
}

// snapshot writes the state and starts an empty journal. It runs with nothing prepared.
func (s *Store) snapshot() error {
	st := s.st
	st.GroupList = make([]*group, 0, len(st.Groups))
	now := s.now()
	for _, g := range st.Groups {
		// A group whose window has passed is only kept while a pending match may refer to it.
		if now.Before(g.Start.Add(g.Period)) || s.isPending(g.AlertID) {
			st.GroupList = append(st.GroupList, g)
		}
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(s.dir, "snapshot.json"), data, 0o666); err != nil {
		return err
	}
	if err := s.journal.Truncate(0); err != nil {
		return err
	}
	s.size = 0
	return s.journal.Sync()
}

// SetClock sets the clock of the store (default time.Now): it dates matches and starts dedup
// windows.
func (s *Store) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

// Resolve marks an alert resolved by who.
func (s *Store) Resolve(id, by string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resolveLocked(id, by, s.now().UTC())
}

func (s *Store) resolveLocked(id, by string, at time.Time) error {
	a := s.st.Alerts[id]
	if a == nil {
		return fmt.Errorf("no alert %s", id)
	}
	if a.Status == StatusResolved {
		return nil
	}
	if err := s.append(record{Op: opResolve, ID: id, By: by, At: at}, true); err != nil {
		return err
	}
	s.st.resolve(id, by, at)
	// The next Prepare of any lane writes the change.
	if s.changed[resolvedLane] == nil {
		s.changed[resolvedLane] = map[string]bool{}
	}
	s.changed[resolvedLane][id] = true
	return nil
}

// resolvedLane holds the alerts resolved since the last Prepare, of whatever lane.
const resolvedLane = "\x00resolved"

// isPending reports whether a lane has matches of an alert not yet prepared.
func (s *Store) isPending(id string) bool {
	for _, p := range s.pending {
		if p[id] != nil {
			return true
		}
	}
	return false
}

// Alerts returns a copy of every alert, newest first.
func (s *Store) Alerts() []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedAlerts(s.st.Alerts)
}

// Alert returns a copy of one alert.
func (s *Store) Alert(id string) (Alert, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.Alerts[id]
	if a == nil {
		return Alert{}, false
	}
	return *a, true
}

func sortedAlerts(m map[string]*Alert) []Alert {
	out := make([]Alert, 0, len(m))
	for _, a := range m {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b Alert) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.AlertID, b.AlertID)
	})
	return out
}

// ReadAlerts returns the alerts of the store in dir without opening it for writing (another
// process may hold it): the committed state, with resolutions requested and not yet taken.
func ReadAlerts(dir string) ([]Alert, error) {
	st, _, _, err := loadReadOnly(dir)
	if err != nil {
		return nil, err
	}
	reqs, err := readRequests(dir)
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		st.resolve(r.ID, r.By, r.At)
	}
	return sortedAlerts(st.Alerts), nil
}

// loadReadOnly is load without cutting a torn journal line.
func loadReadOnly(dir string) (state, []*prepared, int64, error) {
	tmp, err := os.MkdirTemp("", "osprey-alerts-")
	if err != nil {
		return state{}, nil, 0, err
	}
	defer os.RemoveAll(tmp)
	for _, name := range []string{"snapshot.json", "journal.jsonl"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return state{}, nil, 0, err
		}
		if name == "journal.jsonl" {
			if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
				data = data[:i+1]
			} else {
				data = nil
			}
		}
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o600); err != nil {
			return state{}, nil, 0, err
		}
	}
	return load(tmp)
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Notified records that alerts were handed to their destinations (the outbox, which keeps
// them from then on). It is not synced: after a crash an alert may be handed on again, with
// the same delivery ids (see dest.DeliveryID).
func (s *Store) Notified(ids ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if !s.st.Unnotified[id] {
			continue
		}
		if err := s.append(record{Op: opNotify, ID: id}, false); err != nil {
			return err
		}
		delete(s.st.Unnotified, id)
	}
	return nil
}

// Unnotified returns copies of the alerts raised and not yet handed to destinations, oldest
// first: those of a process that died between the two, or that ran without destinations.
func (s *Store) Unnotified() []*Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Alert
	for id := range s.st.Unnotified {
		if a := s.st.Alerts[id]; a != nil {
			cp := *a
			out = append(out, &cp)
		}
	}
	slices.SortFunc(out, func(a, b *Alert) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out
}
