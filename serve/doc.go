// Package serve is osprey serve, the daemon: its sources (HTTP, syslog, S3 via SQS, Rapid7),
// the durable pipeline into the lake, streaming rules in front of the lake writer, scheduled
// queries and rules, alert destinations, drop-off alarms, and the HTTP endpoints (POST
// /http/<source>, POST /v1/query, GET /healthz, GET /metrics).
//
// Open builds the parts in the order data flows out of the pipeline (the lake writer, the
// per-source counts, the detections engine, then the pipeline and its sources) and listens;
// Run serves until its context is done, then stops taking records, reads what the write-ahead
// log holds into the lake and flushes. A test starts a Server in its own process:
//
//	s, err := serve.Open(ctx, cfg, serve.Options{Logger: log})
//	...
//	go s.Run(ctx) // s.Addr() answers
//
// Each query of the API runs in a worker process (Options.QueryWorker, RunQueryWorker), so
// that no query's memory is serve's.
//
// Files: serve.go (Open, Run, the endpoints), sources.go (the sources in effect, the lake's
// sources file watched), pull.go (S3 and Rapid7 sources), detections.go (rules, alert store,
// outbox, schedules), queryapi.go and queryworker.go (POST /v1/query), metrics.go, health.go
// (/healthz, the health file), dropoff.go (Osprey.SourceAlarm events).
package serve
