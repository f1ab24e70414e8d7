package lake

import "path/filepath"

// The lake's own state, under <lake>/_osprey (see doc.go). Every package asks these for its
// paths, so that the layout is written in one place and ReadDirs can keep queries out of all
// of it. They take the lake's directory, since some are read before the lake is opened.

// StateDir is <lake>/_osprey.
func StateDir(dir string) string { return filepath.Join(dir, "_osprey") }

// TokensFile holds the API tokens (hashed), mode 0600.
func TokensFile(dir string) string { return filepath.Join(StateDir(dir), "tokens.json") }

// SourcesFile holds the sources added by osprey source add, secrets hashed, mode 0600.
func SourcesFile(dir string) string { return filepath.Join(StateDir(dir), "sources.yml") }

// WALDir holds osprey serve's write-ahead log.
func WALDir(dir string) string { return filepath.Join(StateDir(dir), "wal") }

// AlertsDir holds the alert store: journal, snapshot, requests.
func AlertsDir(dir string) string { return filepath.Join(StateDir(dir), "alerts") }

// OutboxDir holds the alerts waiting for their destinations, and the dead letters.
func OutboxDir(dir string) string { return filepath.Join(StateDir(dir), "outbox") }

// SchedulesDir holds the scheduled queries' runs and their locks.
func SchedulesDir(dir string) string { return filepath.Join(StateDir(dir), "schedules") }

// BackfillDir holds the manifests of S3 backfills.
func BackfillDir(dir string) string { return filepath.Join(StateDir(dir), "backfill") }

// HealthFile holds the pull sources' health, for osprey source list.
func HealthFile(dir string) string { return filepath.Join(StateDir(dir), "health.json") }

// ServeLock is the lock osprey serve holds on its lake.
func ServeLock(dir string) string { return filepath.Join(StateDir(dir), "serve.lock") }

// CatalogFile is the SQLite database of the lake's Iceberg catalog (package lake/iceberg); the
// tables' Iceberg metadata is in <lake>/<database>/<table>/metadata.
func CatalogFile(dir string) string { return filepath.Join(StateDir(dir), "catalog.db") }
