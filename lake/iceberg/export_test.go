package iceberg

import "database/sql"

// What the external tests (package iceberg_test, which may import package lake for its
// encoder) need of the package's internals.
var (
	EntryOf   = dataFile
	LocalPath = localPath
)

const PartitionFieldID = partitionFieldID

func DBOf(c *Catalog) *sql.DB { return c.db }
