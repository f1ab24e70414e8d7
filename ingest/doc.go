// Package ingest turns streams of log records into Arrow record batches of lake tables.
//
// An Ingester runs a pool of workers. Each stream is decompressed and cut into chunks of records
// (package stream): lines, or JSON values for a stream of JSON documents (a pretty-printed
// file, a JSON array, CloudTrail's {"Records": [...]}); the framing is sniffed from the stream's
// first bytes unless set. A worker splits a record that is an envelope of a candidate log type
// into its records, and classifies each against the candidate log types: a cheap check first
// (LogType.Check), then a parse, the last type that matched tried first. It parses the record
// into a batch builder of the row's table and event hour, and hands full batches to a Sink (the
// lake writer, and detections as they are added). A record that no candidate accepts becomes a
// row of panther_monitor.classification_failures with its source, line number, the reason from
// each candidate and the raw text; the rest of the stream goes on.
//
// The files follow a record through a worker:
//   - ingest.go: the Ingester and its entry points (New, Ingest, IngestFile, IngestRecords,
//     Flush, Close), the Sink it writes to, Options and the Summary;
//   - worker.go: the worker loop, which takes the chunks of a stream or the records given
//     whole, cuts chunks into lines and hands each record on to classification;
//   - classify.go: envelopes, the candidate log types of a source, the cheap check then the
//     parse (last winner first), the row's builder by table and event hour;
//   - flush.go: the flush policy, when a builder is handed to the sink: full, memory short,
//     idle or cold hour (once a chunk is parsed), waited Options.MaxDelay, at Flush and Close;
//   - failures.go and sourceerrors.go: the panther_monitor tables of records no log type
//     accepted and of what pull sources gave up on.
package ingest
