package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/ingest/logtypes"
	"github.com/ospreyhq/osprey/lake"
)

func newSource(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "source",
		Short: "Add, list and remove the sources osprey serve takes records from",
		Long: `Sources added here are kept in the lake (_osprey/sources.yml, readable by its owner only)
and taken up by a running osprey serve within seconds; sources in the configuration file of
osprey serve are listed too. An HTTP source receives POST /http/<id>.`,
	}
	cmd.AddCommand(newSourceAdd(g), newSourceList(g), newSourceRemove(g))
	return cmd
}

func newSourceAdd(g *globals) *cobra.Command {
	var s config.Source
	var maxBody string
	var dropOff string
	cmd := &cobra.Command{
		Use:   "add ID",
		Short: "Add (or replace) a source",
		Example: `  osprey source add fluentbit --log-type Linux.Auditd --stream json --auth header --header x-sender-header --secret-env FB_SECRET
  osprey source add trail --log-type AWS.CloudTrail --stream jsonarray --envelope Records --auth bearer --secret-file /etc/osprey/trail.token
  osprey source add audit --log-type Panther.Audit --label "Panther audit" --drop-off off`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s.ID = args[0]
			if maxBody != "" {
				if err := s.MaxBody.UnmarshalYAML([]byte(maxBody)); err != nil {
					return err
				}
			}
			if dropOff != "" {
				s.DropOffAlarm = new(config.Duration)
				if err := s.DropOffAlarm.UnmarshalYAML([]byte(dropOff)); err != nil {
					return err
				}
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
				if _, err := s.Auth.SecretValue(); err != nil {
					return fmt.Errorf("source %s: %w", s.ID, err)
				}
			}
			l, err := lake.Open(g.lakeDir)
			if err != nil {
				return err
			}
			sources, err := config.LoadLakeSources(l.Dir())
			if err != nil {
				return err
			}
			replaced := false
			for i := range sources {
				if sources[i].ID == s.ID {
					sources[i], replaced = s, true
				}
			}
			if !replaced {
				sources = append(sources, s)
			}
			if err := config.SaveLakeSources(l.Dir(), sources); err != nil {
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
	f.StringVar(&s.Type, "type", config.SourceHTTP, "http or syslog")
	f.StringVar(&s.Label, "label", "", "p_source_label of its rows (default the id)")
	f.StringSliceVarP(&s.LogTypes, "log-type", "t", nil, "log type of its records (repeat for several candidates)")
	f.StringVar(&s.Stream, "stream", "", "http: auto, lines, json, jsonarray or cloudwatch (default auto)")
	f.StringVar(&s.Envelope, "envelope", "", "jsonarray: the field holding the array, such as Records")
	f.StringVar(&s.Auth.Type, "auth", "", "http: none, header, hmac, bearer or basic")
	f.StringVar(&s.Auth.Header, "header", "", "auth header or hmac: the header carrying the secret or signature")
	f.StringVar(&s.Auth.Username, "username", "", "auth basic: the user name")
	f.StringVar(&s.Auth.Encoding, "hmac-encoding", "", "auth hmac: hex (default) or base64")
	f.StringVar(&s.Auth.Secret, "secret", "", "the secret, token or password (kept in the lake's sources file; prefer --secret-env or --secret-file)")
	f.StringVar(&s.Auth.SecretEnv, "secret-env", "", "the environment variable holding the secret, read by osprey serve")
	f.StringVar(&s.Auth.SecretFile, "secret-file", "", "the file holding the secret, read by osprey serve")
	f.StringVar(&maxBody, "max-body", "", "http: request body limit, such as 10MiB")
	f.IntVar(&s.MaxRecords, "max-records", 0, "http: records per request limit (default 100000)")
	f.StringSliceVar((*[]string)(&s.Listen), "listen", nil, "syslog: udp://host:port or tcp://host:port (repeatable)")
	f.StringVar(&dropOff, "drop-off", "", "alarm when no event comes for this long, such as 24h; off to disable (default 24h, off for Panther.Audit only)")
	return cmd
}

func newSourceList(g *globals) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the sources",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := lake.Open(g.lakeDir)
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
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tTYPE\tLOG TYPES\tENDPOINT\tAUTH\tDROP-OFF\tFROM")
			for _, s := range sources {
				endpoint := "/http/" + s.ID
				if s.Type == config.SourceSyslog {
					endpoint = strings.Join(s.Listen, ",")
				}
				auth := s.Auth.Type
				if auth == "" && s.Type == config.SourceHTTP {
					auth = "none"
				}
				drop := "off"
				if d := s.AlarmAfter(); d > 0 {
					drop = d.String()
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Type, strings.Join(s.LogTypes, ","), endpoint, auth, drop, where[s.ID])
			}
			return w.Flush()
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
			l, err := lake.Open(g.lakeDir)
			if err != nil {
				return err
			}
			sources, err := config.LoadLakeSources(l.Dir())
			if err != nil {
				return err
			}
			kept := sources[:0]
			for _, s := range sources {
				if s.ID != args[0] {
					kept = append(kept, s)
				}
			}
			if len(kept) == len(sources) {
				return fmt.Errorf("no source %q in the lake %s", args[0], l.Dir())
			}
			if err := config.SaveLakeSources(l.Dir(), kept); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "source %s removed\n", args[0])
			return nil
		},
	}
}
