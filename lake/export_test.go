package lake

// Exported for the tests of package lake_test, which read the lake with DuckDB through package
// query (which imports lake).
var RandomRecord = randomRecord
