package main

import (
	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/serve"
)

type serveOptions struct {
	config     string
	listen     string
	detections []string
}

func newServe(g *globals) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the ingest daemon: HTTP, syslog, S3 (SQS) and Rapid7 sources, durable, into the lake",
		Long: `Serve runs until SIGINT or SIGTERM, then flushes and exits. It accepts records from its
sources (see the configuration file, and osprey source add), writes each accepted request to a
write-ahead log before answering it, and flushes the lake on age (60 s by default) and size:
an answered request is never lost, even if the process is killed, and its records are in the
lake exactly once.

Pull sources read on their own: an s3 source reads the objects its SQS queue's notifications
name and deletes a message once its objects are in the write-ahead log; a rapid7 source polls
Rapid7's API, its cursor kept with its records. Objects that fail every retry are kept in
panther_monitor.source_errors.

Without --config it serves the lake given by --lake on 127.0.0.1:8080 with the sources added
by osprey source add.

Detections (the config's detections.dirs, and --detections): streaming rules run on the events
of their log types as they arrive, within detections.maxDelay (250ms by default); alerts go to
the config's destinations through a durable outbox (retried with backoff, dead-lettered after
their attempts), and the matches are written to panther_rule_matches with the events' flush.

Endpoints: POST /http/<source-id> (HTTP sources), POST /v1/query (SQL over the lake, with an API
token from osprey token create), GET /healthz, GET /metrics (Prometheus; with an API token
when the config says metrics: {auth: token}). The config's http section bounds what clients
may hold: timeouts, connections, requests in flight per source, memory of request bodies.`,
		Example: `  osprey serve --config osprey.yml
  osprey source add fluentbit --log-type Linux.Auditd --stream json --auth header --header x-sender-header --secret-env FB_SECRET
  osprey serve --lake /var/lib/osprey --listen 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := config.Default()
			if o.config != "" {
				var err error
				if cfg, err = config.Load(o.config); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("lake") || o.config == "" {
				cfg.Lake = g.lakeDir
			}
			if cmd.Flags().Changed("state") || cfg.State == "" && g.state != "" {
				cfg.State = g.state
			}
			if cmd.Flags().Changed("catalog") || cfg.Catalog == (config.Catalog{}) && g.catalog != "" {
				cfg.Catalog = g.config(config.Default()).Catalog
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if o.listen != "" {
				cfg.Listen = o.listen
			}
			cfg.Detections.Dirs = append(cfg.Detections.Dirs, o.detections...)
			s, err := serve.Open(cmd.Context(), cfg, serve.Options{Logger: g.logger(), Stderr: cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			return s.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.config, "config", "", "configuration file (see the config package documentation)")
	cmd.Flags().StringVar(&o.listen, "listen", "", "HTTP address (default the config's, else 127.0.0.1:8080)")
	cmd.Flags().StringArrayVar(&o.detections, "detections", nil, "a directory of detection specs, added to the config's (repeatable)")
	return cmd
}

// newQueryWorker is the hidden command serve runs for each query of its API
// (serve.Options.QueryWorker): the request on standard input, the result on standard output,
// the status on file descriptor 3.
func newQueryWorker() *cobra.Command {
	return &cobra.Command{
		Use:    serve.QueryWorkerArg,
		Short:  "Run one query of osprey serve's API (started by serve)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serve.QueryWorkerMain(cmd.Context())
		},
	}
}
