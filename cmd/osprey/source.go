package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/source/health"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/serve"
)

func newSource(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "source",
		Short: "Add, list and remove the sources osprey serve takes records from",
		Long: `Sources added here are kept in the lake (_osprey/sources.yml, readable by its owner only)
and taken up by a running osprey serve within seconds; sources in the configuration file of
osprey serve are listed too. An HTTP source receives POST /http/<id>; a syslog source listens;
an s3 source reads the objects its SQS queue's notifications name; a rapid7 source polls
Rapid7's API for InsightIDR audit logs.

The lake keeps no secret in plain text: a secret given with --secret (header, bearer, basic) is
kept as its SHA-256. An hmac key signs and cannot be hashed, so it stays outside the lake: give
--secret-env or --secret-file (a file of mode 0600).`,
	}
	cmd.AddCommand(newSourceAdd(g), newSourceList(g), newSourceRemove(g))
	return cmd
}

func newSourceAdd(g *globals) *cobra.Command {
	var s config.Source
	var maxBody string
	var dropOff string
	var window string
	var s3c config.S3
	var r7 config.Rapid7
	var prefixTypes, excluded []string
	var region, visibility, interval string
	cmd := &cobra.Command{
		Use:   "add ID",
		Short: "Add (or replace) a source",
		Example: `  osprey source add fluentbit --log-type Linux.Auditd --stream json --auth header --header x-sender-header --secret-env FB_SECRET
  osprey source add trail --log-type AWS.CloudTrail --stream jsonarray --envelope Records --auth bearer --secret-file /etc/osprey/trail.token
  osprey source add hook --log-type Panther.Audit --auth hmac --header x-signature --timestamp-header x-timestamp --secret-env HOOK_KEY
  osprey source add audit --log-type Panther.Audit --label "Panther audit" --drop-off off
  osprey source add trail --type s3 --log-type AWS.CloudTrail --bucket my-trail --prefix AWSLogs/ \
      --queue https://sqs.us-east-1.amazonaws.com/123456789012/osprey --region us-east-1 \
      --prefix-log-types AWSLogs/o-1/app/=Panther.Audit --exclude-prefix AWSLogs/123456789012/CloudTrail-Digest/
  osprey source add r7 --type rapid7 --region us3 --api-key-env RAPID7_API_KEY`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s.ID = args[0]
			if maxBody != "" {
				if err := s.MaxBody.UnmarshalYAML([]byte(maxBody)); err != nil {
					return err
				}
			}
			if window != "" {
				if err := s.Auth.Window.UnmarshalYAML([]byte(window)); err != nil {
					return err
				}
			}
			if dropOff != "" {
				s.DropOffAlarm = new(config.Duration)
				if err := s.DropOffAlarm.UnmarshalYAML([]byte(dropOff)); err != nil {
					return err
				}
			}
			switch s.Type {
			case config.SourceS3:
				s3c.Region = region
				if visibility != "" {
					if err := s3c.Visibility.UnmarshalYAML([]byte(visibility)); err != nil {
						return err
					}
				}
				for _, pt := range prefixTypes {
					prefix, types, ok := strings.Cut(pt, "=")
					if !ok || types == "" {
						return fmt.Errorf("--prefix-log-types %q: want PREFIX=LogType[,LogType...]", pt)
					}
					s3c.Prefixes = append(s3c.Prefixes, config.S3Prefix{Prefix: prefix, LogTypes: strings.Split(types, ",")})
				}
				for _, p := range excluded {
					s3c.Prefixes = append(s3c.Prefixes, config.S3Prefix{Prefix: p, Exclude: true})
				}
				s.S3 = &s3c
			case config.SourceRapid7:
				r7.Region = region
				if interval != "" {
					if err := r7.Interval.UnmarshalYAML([]byte(interval)); err != nil {
						return err
					}
				}
				s.Rapid7 = &r7
			}
			if err := s.Validate(); err != nil {
				return err
			}
			reg, err := logtypes.Builtin()
			if err != nil {
				return err
			}
			for _, name := range s.LogTypes {
				if _, err := reg.Lookup(name); err != nil {
					return err
				}
			}
			if s.Type == config.SourceHTTP {
				if s.Auth.Type == "hmac" && s.Auth.Secret != "" {
					return fmt.Errorf("source %s: an hmac key is not kept in the lake: give --secret-env or --secret-file (a file of mode 0600 outside the lake)", s.ID)
				}
				if _, err := s.Auth.SecretValue(); err != nil {
					return fmt.Errorf("source %s: %w", s.ID, err)
				}
			}
			if s.Type == config.SourceS3 {
				if _, _, err := serve.S3Router(s, reg); err != nil {
					return fmt.Errorf("source %s: %w", s.ID, err)
				}
			}
			l, err := g.openLake()
			if err != nil {
				return err
			}
			replaced := false
			err = config.UpdateLakeSources(l.Dir(), func(sources []config.Source) ([]config.Source, error) {
				for i := range sources {
					if sources[i].ID == s.ID {
						sources[i], replaced = s, true
					}
				}
				if !replaced {
					sources = append(sources, s)
				}
				return sources, nil
			})
			if err != nil {
				return err
			}
			verb := "added"
			if replaced {
				verb = "replaced"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "source %s %s", s.ID, verb)
			if s.Type == config.SourceHTTP {
				fmt.Fprintf(cmd.OutOrStdout(), ": POST /http/%s", s.ID)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&s.Type, "type", config.SourceHTTP, "http, syslog, s3 or rapid7")
	f.StringVar(&s.Label, "label", "", "p_source_label of its rows (default the id)")
	f.StringSliceVarP(&s.LogTypes, "log-type", "t", nil, "log type of its records (repeat for several candidates)")
	f.StringVar(&s.Stream, "stream", "", "http: auto, lines, json, jsonarray or cloudwatch (default auto)")
	f.StringVar(&s.Envelope, "envelope", "", "jsonarray: the field holding the array, such as Records")
	f.StringVar(&s.Auth.Type, "auth", "", "http: none, header, hmac, bearer or basic")
	f.StringVar(&s.Auth.Header, "header", "", "auth header or hmac: the header carrying the secret or signature")
	f.StringVar(&s.Auth.Username, "username", "", "auth basic: the user name")
	f.StringVar(&s.Auth.Encoding, "hmac-encoding", "", "auth hmac: hex (default) or base64")
	f.StringVar(&s.Auth.TimestampHeader, "timestamp-header", "", `auth hmac: the header with the request's Unix time; the signature is then over "<timestamp>.<body>"`)
	f.StringVar(&window, "timestamp-window", "", "auth hmac with --timestamp-header: how far the timestamp may be from now (default 5m)")
	f.StringVar(&s.Auth.Secret, "secret", "", "the secret, token or password (the lake keeps its SHA-256 only; not for hmac: use --secret-env or --secret-file)")
	f.StringVar(&s.Auth.SecretEnv, "secret-env", "", "the environment variable holding the secret, read by osprey serve")
	f.StringVar(&s.Auth.SecretFile, "secret-file", "", "the file holding the secret, read by osprey serve")
	f.StringVar(&maxBody, "max-body", "", "http: request body limit, such as 10MiB")
	f.IntVar(&s.MaxRecords, "max-records", 0, "http: records per request limit (default 100000)")
	f.StringSliceVar((*[]string)(&s.Listen), "listen", nil, "syslog: udp://host:port or tcp://host:port (repeatable)")
	f.StringVar(&dropOff, "drop-off", "", "alarm when no event comes for this long, such as 24h; off to disable (default 24h, off for Panther.Audit only)")
	f.StringVar(&s3c.Bucket, "bucket", "", "s3: the bucket")
	f.StringVar(&s3c.Prefix, "prefix", "", "s3: only keys under this prefix")
	f.StringArrayVar(&prefixTypes, "prefix-log-types", nil, "s3: PREFIX=LogType[,LogType]: log types of the keys under a prefix (repeatable; the longest match wins)")
	f.StringArrayVar(&excluded, "exclude-prefix", nil, "s3: skip the keys under this prefix (repeatable)")
	f.StringVar(&s3c.Queue, "queue", "", "s3: the URL of the SQS queue receiving the bucket's notifications")
	f.StringVar(&region, "region", "", "s3: the AWS region; rapid7: the data storage region (us, us2, us3, eu, ca, au, ap)")
	f.StringVar(&s3c.Endpoint, "endpoint", "", "s3: an S3-compatible endpoint (and its SQS)")
	f.BoolVar(&s3c.PathStyle, "path-style", false, "s3: path-style addressing (endpoint/bucket/key)")
	f.StringVar(&s3c.RoleARN, "role-arn", "", "s3: a role to assume")
	f.StringVar(&s3c.ExternalID, "external-id", "", "s3: the external id of the role")
	f.StringVar(&s3c.KMSKey, "kms-key", "", "s3: the KMS key of SSE-KMS objects")
	f.IntVar(&s3c.MaxAttempts, "max-attempts", 0, "s3: tries of an object before it is recorded as an error (default 5)")
	f.StringVar(&visibility, "visibility", "", "s3: how long a message is hidden while read (default 5m)")
	f.StringVar(&r7.APIKeyEnv, "api-key-env", "", "rapid7: the environment variable holding the API key, read by osprey serve")
	f.StringVar(&r7.APIKeyFile, "api-key-file", "", "rapid7: the file holding the API key, read by osprey serve")
	f.StringSliceVar(&r7.LogIDs, "log-id", nil, "rapid7: an audit log's id (default: the logs named *audit*)")
	f.StringVar(&interval, "interval", "", "rapid7: time between polls (default 1m)")
	return cmd
}

func newSourceList(g *globals) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the sources",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.openLake()
			if err != nil {
				return err
			}
			sources, err := config.LoadLakeSources(l.Dir())
			if err != nil {
				return err
			}
			where := map[string]string{}
			for _, s := range sources {
				where[s.ID] = "lake"
				if s.Auth.Secret != "" { // written by an older osprey
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: source %s keeps its secret in plain text in %s: %s\n",
						s.ID, config.LakeSourcesFile(l.Dir()), plainSecretFix(s))
				}
			}
			if configPath != "" {
				cfg, err := config.Load(configPath)
				if err != nil {
					return err
				}
				for _, s := range cfg.Sources {
					if _, ok := where[s.ID]; !ok {
						sources = append(sources, s)
					}
					where[s.ID] = "config"
				}
			}
			sort.Slice(sources, func(i, j int) bool { return sources[i].ID < sources[j].ID })
			report, err := health.ReadReport(lake.HealthFile(l.Dir()))
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tTYPE\tLOG TYPES\tENDPOINT\tAUTH\tDROP-OFF\tFROM\tHEALTH\tLAST SUCCESS\tLAST ERROR\tLAG\tOBJECTS\tRECORDS")
			var errs []string
			now := time.Now()
			for _, s := range sources {
				endpoint := "/http/" + s.ID
				switch s.Type {
				case config.SourceSyslog:
					endpoint = strings.Join(s.Listen, ",")
				case config.SourceS3:
					endpoint = "s3://" + s.S3.Bucket + "/" + s.S3.Prefix
					if s.S3.Queue != "" {
						endpoint += " via " + s.S3.Queue
					}
				case config.SourceRapid7:
					endpoint = "rapid7 " + s.Rapid7.Region
				}
				hcols := "-\t-\t-\t-\t-\t-"
				if s.IsPull() {
					hcols = "unknown (osprey serve not running)\t-\t-\t-\t-\t-"
					if h, ok := report.Source(s.ID); ok {
						state := "ok"
						if !h.Healthy {
							state = "error"
							errs = append(errs, fmt.Sprintf("%s: %s (%s)", s.ID, h.Error, ago(now, h.LastError)))
						}
						if now.Sub(report.Written) > 3*health.ReportInterval {
							state += fmt.Sprintf(" (as of %s)", ago(now, report.Written))
						}
						hcols = fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%d", state, ago(now, h.LastSuccess), ago(now, h.LastError),
							(time.Duration(h.Lag) * time.Second).String(), h.Objects, h.Records)
					}
				}
				auth := s.Auth.Type
				if auth == "" && s.Type == config.SourceHTTP {
					auth = "none"
				}
				drop := "off"
				if d := s.AlarmAfter(); d > 0 {
					drop = d.String()
				}
				if s.IsPull() {
					auth = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Type, strings.Join(s.LogTypes, ","), endpoint, auth, drop, where[s.ID], hcols)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			for _, e := range errs {
				fmt.Fprintln(cmd.OutOrStdout(), "last error of", e)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "also list the sources of this osprey serve configuration file")
	return cmd
}

func newSourceRemove(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a source added with osprey source add",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.openLake()
			if err != nil {
				return err
			}
			err = config.UpdateLakeSources(l.Dir(), func(sources []config.Source) ([]config.Source, error) {
				kept := slices.DeleteFunc(slices.Clone(sources), func(s config.Source) bool { return s.ID == args[0] })
				if len(kept) == len(sources) {
					return nil, fmt.Errorf("no source %q in the lake %s", args[0], l.Dir())
				}
				return kept, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "source %s removed\n", args[0])
			return nil
		},
	}
}

// plainSecretFix says how a source of the lake stops keeping its secret in plain text.
func plainSecretFix(s config.Source) string {
	if s.Auth.Type == "hmac" {
		return "re-add it with --secret-env or --secret-file (an hmac key cannot be hashed), or remove it"
	}
	return "the next osprey source add or remove writes its SHA-256 instead"
}

// ago says how long ago t was ("-" for never).
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}
