// Package lake stores tables as Hive-partitioned Parquet files and commits them atomically.
//
// # Layout
//
// A lake is a directory:
//
//	<lake>/<database>/<table>/year=YYYY/month=MM/day=DD/hour=HH/<YYYYMMDDTHH0000Z>-<uuidv7>.parquet
//	<lake>/_osprey/schemas/<database>/<table>/year=0000/month=00/day=00/hour=00/schema.parquet
//	<lake>/_osprey/tmp/<writer>/...                                 files being written
//	<lake>/_osprey/commits/<writer>.json                            commit metadata of each writer
//	<lake>/_osprey/wal/, alerts/, outbox/, schedules/, backfill/    serve's log, alert store, ...
//	<lake>/_osprey/tokens.json, sources.yml, health.json, serve.lock  (layout.go names them all)
//	<lake>/_osprey/catalog.db                                       Iceberg catalog (lake/iceberg; not used yet)
//	<lake>/_spill/                                                  DuckDB's spill files
//
// Queries may read the databases' directories and _osprey/schemas (ReadDirs), nothing else
// of _osprey.
//
// Databases are panther_logs (one table per log type), panther_monitor
// (classification_failures), panther_rule_matches, panther_rule_errors and panther_views. Table
// names are lowercase ([a-z0-9_]). The partition of a row is the UTC hour of its p_event_time;
// month, day and hour are written with two digits and are read back as integers.
//
// Every data file of a table has the columns the table had when the file was written, in the
// table's order. schema.parquet is a file with the table's columns and no rows; readers list it
// first so that the table's columns are known without opening a data file (DuckDB takes the
// columns of the first file it reads), and a query whose time range holds no data still has its
// columns. Its key-value metadata "osprey.schema" holds the table's schema signature.
//
// # Schema evolution
//
// A table's columns only grow: a writer given a batch with new columns (a log schema with new
// fields or indicators) and all the old ones, of the same types, rewrites schema.parquet with
// the new columns and the metadata "osprey.evolved" = "true"; a batch that lacks a column or
// changes its type is refused (ErrIncompatible), because the files already written keep theirs.
// Readers of an evolved table match each file's columns by name and read NULL for the columns an
// older file lacks (DuckDB's union_by_name); tables that never evolved are read without it.
//
// # Types
//
// Strings are BYTE_ARRAY with the STRING (or, for JSON text, JSON) logical type; int, smallint
// and bigint are INT32/INT32/INT64 with the INT(16|32|64) logical type; float is DOUBLE;
// timestamps are INT64 TIMESTAMP(MICROS, isAdjustedToUTC=true); objects are groups; arrays are
// 3-level LISTs. Columns are optional except the p_ fields every row has.
//
// # Files
//
// Each Write of a batch adds one row group per hour it holds to that hour's open file. Column
// chunks are version 1 data pages (about 1 MiB, cut at row boundaries) of PLAIN or, for strings
// whose values repeat, RLE_DICTIONARY values with a PLAIN dictionary page, compressed with zstd.
// Chunks carry null counts and min/max statistics (numbers, timestamps, booleans, and strings of
// a dictionary up to 64 bytes). The footer's schema is the one parquet-go writes for the table,
// as in schema.parquet. They are built from the Arrow buffers with parquet-go's encodings,
// codec and metadata types (chunk.go, shred.go, pqfile.go); see ARCHITECTURE.md for why not
// its row writer.
//
// # Commit protocol
//
// A partition file is written in <lake>/_osprey/tmp/<writer>/ and finished there (footer
// written, closed). Flush publishes the finished files as one unit: one syncfs makes their data
// durable, a manifest listing the renames (and the flush's commit metadata) is written durably
// to the writer's tmp directory, each file is renamed into its partition directory (created as
// needed), a second syncfs makes the new directory entries durable, the commit metadata is
// recorded in <lake>/_osprey/commits/<writer name>.json, and the manifest is removed. A reader
// therefore sees a file whole or not at all, a file is reported committed only once it survives
// a crash, and a flush is visible whole or not at all: the next writer that opens the lake
// finishes a flush whose manifest a crashed writer left (each writer holds an flock on its own
// tmp directory while it runs) and removes that writer's other files, which were never visible.
// Schema files are committed one by one the same way, with fsync.
package lake
