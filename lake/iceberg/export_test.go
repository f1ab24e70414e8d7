package iceberg

import (
	"database/sql"
	"time"
)

// What the external tests (package iceberg_test, which may import package lake for its
// encoder) need of the package's internals.
var (
	EntryOf   = dataFile
	LocalPath = localPath
)

const (
	PartitionFieldID = partitionFieldID
	KeepSnapshots    = keepSnapshots
	ExpireAbove      = expireAbove
)

func DBOf(c *Catalog) *sql.DB { return c.db }

// SetExpiry sets when c's commits expire snapshots: past above snapshots, keeping the last keep
// and those younger than age (expireAbove, keepSnapshots and keepSnapshotsFor by default).
func SetExpiry(c *Catalog, above, keep int, age time.Duration) {
	c.expiry = expiryPolicy{above: above, keep: keep, age: age}
}

// SetMaxSnapshots sets the number of snapshots past which commits keep only the last
// expireAbove, whatever their age (maxSnapshots by default).
func SetMaxSnapshots(c *Catalog, n int) { c.expiry.max = n }
