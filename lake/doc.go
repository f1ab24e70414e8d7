// Package lake stores tables as Apache Iceberg tables of Parquet files, and commits them
// atomically.
//
// # Layout
//
// A lake is a directory:
//
//	<lake>/<database>/<table>/year=YYYY/month=MM/day=DD/<YYYYMMDDT000000Z>-<uuidv7>.parquet
//	<lake>/<database>/<table>/metadata/              the table's Iceberg metadata (lake/iceberg)
//	<lake>/_osprey/catalog.db                        the Iceberg catalog (SQLite): each table's
//	                                                 current metadata, each writer's commit metadata
//	<lake>/_osprey/schemas/<database>/<table>/year=0000/month=00/day=00/hour=00/schema.parquet
//	<lake>/_osprey/tmp/<writer>/...                  files being written, a flush being published
//	<lake>/_osprey/wal/, alerts/, outbox/, schedules/, backfill/    serve's log, alert store, ...
//	<lake>/_osprey/tokens.json, sources.yml, health.json, serve.lock  (layout.go names them all)
//	<lake>/_spill/                                   DuckDB's spill files
//
// Queries may read the databases' directories and _osprey/schemas (ReadDirs), nothing else
// of _osprey.
//
// # A lake in S3
//
// With Options.Location s3://bucket/prefix, the tables' data files and metadata are in the
// bucket at the same paths under the prefix (package objstore reaches it), and the directory
// is the machine's own state: everything above but the databases' directories, plus
//
//	<dir>/_cache/                                    data files fetched for queries (objcache)
//	<dir>/_osprey/node-id                            this directory's id in a shared catalog
//
// and the tables' schema files are also put in the bucket (_osprey/schemas/<db>/<table>/
// schema.parquet), where machines that did not write a table find its columns (SyncSchemas). A
// flush uploads its files instead of renaming them, keeping them in tmp until its commit; the
// catalog is the embedded SQLite one, PostgreSQL, Glue or an Iceberg REST catalog
// (lake/iceberg). Queries read the files their plan keeps, fetched into the cache.
//
// Databases are panther_logs (one table per log type), panther_monitor
// (classification_failures, alert_history), panther_rule_matches, panther_rule_errors and
// panther_views. Table names are lowercase ([a-z0-9_]). Every table is an Iceberg table (format
// v2) partitioned by day(p_event_time), whose files are the ones its snapshot lists, not those
// a directory happens to hold (see package lake/iceberg, and Files).
//
// # Why a file per table and day
//
// A table's rows are partitioned by the UTC day of their p_event_time: a writer keeps a file
// per table and day, and writes each row group's rows in p_event_time order. Day partitions
// suit low and high volume alike: at a few events a second a day is a few files after
// compaction, and a query of an hour reads the day's file but only the row groups whose
// statistics overlap the hour; at high volume files are cut at FileSize. Hour partitions, which
// lakes had before the Iceberg catalog, made a file per hour at least: 600,000 events spread
// over 30 days in random order made 835 files of about 700 rows, and each file costs its
// writer a footer, a rename and a catalog entry and its reader an open and a footer read. With
// Iceberg the partition is hidden (a query filters on p_event_time, and the files are pruned by
// their partition and their bounds), so queries of year, month, day or hour (columns computed
// from p_event_time) keep working whatever the files' granularity. Compaction (compact.go)
// merges a past hour's files, then a past day's, into files of up to CompactTarget bytes.
//
// The schema file is a file with the table's columns and no rows; readers list it first so
// that the table's columns are known without opening a data file (DuckDB takes the columns of
// the first file it reads), and a query whose time range holds no data still has its columns.
// Its key-value metadata "osprey.schema" holds the table's schema signature.
//
// # Schema evolution
//
// A table's columns only grow: a writer given a batch with new columns (a log schema with new
// fields or indicators) and all the old ones, of the same types, rewrites schema.parquet with
// the new columns and the metadata "osprey.evolved" = "true", and adds the columns to the
// Iceberg table's schema; a batch that lacks a column or changes its type is refused
// (ErrIncompatible), because the files already written keep theirs. Readers of an evolved table
// match each file's columns by name and read NULL for the columns an older file lacks (DuckDB's
// union_by_name, Iceberg's name mapping); tables that never evolved are read without it.
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
// Each Write of a batch adds one row group per day it holds to that day's open file, its rows in
// p_event_time order. Column chunks are version 1 data pages (about 1 MiB, cut at row
// boundaries) of PLAIN or, for strings whose values repeat, RLE_DICTIONARY values with a PLAIN
// dictionary page, compressed with zstd. Chunks carry null counts and min/max statistics
// (numbers, timestamps, booleans, and strings of a dictionary up to 64 bytes), which the
// Iceberg entries' bounds are made of. The footer's schema is the one parquet-go writes for the
// table, as in schema.parquet. They are built from the Arrow buffers with parquet-go's
// encodings, codec and metadata types (chunk.go, shred.go, pqfile.go); see ARCHITECTURE.md for
// why not its row writer.
//
// # Commit protocol
//
// A file is written in <lake>/_osprey/tmp/<writer>/ and finished there (footer written,
// closed). Flush publishes the finished files as one unit (commit.go): one syncfs makes their
// data durable, a manifest listing the renames, the flush's number and its commit metadata is
// written durably to the writer's tmp directory, each file is renamed into its day directory,
// and one catalog commit registers every file in its table and records the commit metadata and
// the flush's number (lake/iceberg Catalog.Commit: the tables' new metadata is made durable,
// then one SQLite transaction moves every table's pointer). Then the manifest is removed. A
// reader therefore sees a flush whole or not at all, and a flush is reported committed only
// once it survives a crash: the next writer that opens the lake finishes a flush whose
// manifest a crashed writer left (each writer holds an flock on its own tmp directory while it
// runs), unless the catalog has its number already, and removes that writer's other files,
// which were never visible. Schema files are committed one by one, with fsync.
//
// # Maintenance
//
// Compaction (compact.go) replaces small files by large ones in one commit. Expire
// (maintain.go) drops the files past a table's retention, expires old snapshots and deletes the
// files no snapshot references. Lakes written before the Iceberg catalog are moved over by
// Migrate (migrate.go), which registers their files without rewriting them.
package lake
