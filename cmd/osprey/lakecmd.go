package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/durable"
	"github.com/ospreyhq/osprey/ingest/pipeline"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/units"
)

func newLake(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lake",
		Short: "Maintain the lake: status, compaction, retention; connect other engines",
	}
	var olderThan time.Duration
	compact := &cobra.Command{
		Use:   "compact",
		Short: "Merge the small files of past hours and days into large ones",
		Long: `Each flush of osprey serve (every minute by default) adds a file to each table and hour it has
rows for. compact merges the files of every hour that ended more than --older-than ago into
one file, and the files of every day that ended more than --older-than ago into files of up to
128 MiB, its rows in time order in row groups of 122,880 rows. Each merged file replaces
the files it merges in one Iceberg commit: a query sees the old files or the new one, never
both. The replaced files are deleted by osprey lake expire once no snapshot a query may still
read references them. osprey serve compacts by itself every 10 minutes; run compact by hand
after large ingests with osprey ingest, or from cron when serve is not used.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.readLake()
			if err != nil {
				return err
			}
			w, err := l.NewWriter(lake.WriterOptions{Logger: g.logger()})
			if err != nil {
				return err
			}
			defer w.Close()
			st, err := pipeline.CompactLake(cmd.Context(), l, w, time.Now().Add(-olderThan))
			fmt.Fprintf(cmd.OutOrStdout(), "compacted %d periods: %d files into %d (%d rows, %s)\n",
				st.Partitions, st.FilesIn, st.FilesOut, st.Rows, humanBytes(st.Bytes))
			if st.Lost > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%d periods left: another commit changed their files first (another machine's compaction, or retention)\n", st.Lost)
			}
			return err
		},
	}
	olderThan = time.Hour
	compact.Flags().Var((*units.Duration)(&olderThan), "older-than", "compact hours and days that ended at least this long ago")
	cmd.AddCommand(compact, newLakeStatus(g), newLakeExpire(g), newLakeMigrate(g), newLakeCopy(g), newLakeConnect(g))
	return cmd
}

func newLakeStatus(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each table's files, rows, bytes, snapshots and event times",
		Long: `status shows, for each Iceberg table of the lake: the data files of its current snapshot,
their rows and bytes, the oldest and newest event, the snapshots kept and the files and bytes
of its metadata, and when it was last compacted and expired.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.readLake()
			if err != nil {
				return err
			}
			tables, err := l.Status(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(tables)
			}
			when := func(t time.Time) string {
				if t.IsZero() {
					return "-"
				}
				return t.UTC().Format(time.DateTime)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TABLE\tFILES\tROWS\tBYTES\tOLDEST EVENT\tNEWEST EVENT\tSNAPSHOTS\tMETADATA\tCOMPACTED\tEXPIRED")
			for _, t := range tables {
				fmt.Fprintf(tw, "%s.%s\t%d\t%d\t%s\t%s\t%s\t%d\t%s in %d files\t%s\t%s\n", t.DB, t.Table, t.Files, t.Rows, humanBytes(t.Bytes),
					when(t.Oldest), when(t.Newest), t.Snapshots, humanBytes(t.MetadataBytes), t.MetadataFiles, when(t.LastCompaction), when(t.LastExpiry))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the figures as JSON")
	return cmd
}

func newLakeExpire(g *globals) *cobra.Command {
	var configPath string
	var keep []string
	cmd := &cobra.Command{
		Use:   "expire",
		Short: "Drop rows past their retention, expire old snapshots and delete unreferenced files",
		Long: `expire applies the retention of each table: the data files whose every row is older than the
table's retention are dropped from the table. It then expires the snapshots beyond the last 20
that are older than 10 minutes, and deletes the files of the table's directory that no
remaining snapshot references and that are older than an hour: files dropped by retention or
replaced by compaction, and metadata of expired snapshots. osprey serve does this every hour.

Retention comes from the configuration's retention section (--config), or from --keep
DB=DURATION or DB.TABLE=DURATION (which wins). A table's own entry wins over its database's;
without either, rows are kept forever.`,
		Example: `  osprey lake expire --keep panther_logs=365d --keep panther_logs.panther_audit=5y
  osprey lake expire --config osprey.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := &config.Config{}
			if configPath != "" {
				var err error
				if cfg, err = config.Load(configPath); err != nil {
					return err
				}
			}
			if cfg.Retention == nil {
				cfg.Retention = map[string]config.Duration{}
			}
			for _, k := range keep {
				name, d, ok := strings.Cut(k, "=")
				v, err := units.ParseDuration(d)
				if !ok || err != nil {
					return fmt.Errorf("--keep %s: want DB=DURATION or DB.TABLE=DURATION, such as panther_logs=365d", k)
				}
				cfg.Retention[name] = config.Duration(v)
			}
			if err := config.ValidateRetention(cfg.Retention); err != nil {
				return err
			}
			l, err := g.readLake()
			if err != nil {
				return err
			}
			tables, stats, err := l.Expire(cmd.Context(), cfg.RetentionOf, time.Now())
			out := cmd.OutOrStdout()
			for i, t := range tables {
				st := stats[i]
				fmt.Fprintf(out, "%s.%s: dropped %d files (%d rows) past retention, deleted %d unreferenced files (%s)\n",
					t.DB, t.Table, st.Files, st.Rows, st.Removed, humanBytes(st.Bytes))
			}
			return err
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "configuration file whose retention section applies")
	cmd.Flags().StringArrayVar(&keep, "keep", nil, "DB=DURATION or DB.TABLE=DURATION: keep rows this long (repeatable)")
	return cmd
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func newLakeMigrate(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Register the files of a lake written before the Iceberg catalog",
		Long: `Lakes written by osprey before its Iceberg catalog keep each table's files in Hive directories
(year=/month=/day=/hour=) and nothing else. migrate creates each table in the lake's Iceberg
catalog and registers its files without rewriting them, and moves each writer's commit
metadata (how far osprey serve's log is in the lake) into the catalog. It is safe to run
again, and to interrupt: a second run registers only what the first did not. Stop osprey serve
and other writers of the lake first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.readLake()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			st, err := l.Migrate(cmd.Context(), func(db, table string, files int) {
				fmt.Fprintf(out, "%s.%s: %d files registered\n", db, table, files)
			})
			fmt.Fprintf(out, "migrated: %d tables created, %d files registered, %d writers' commit metadata moved\n", st.Tables, st.Files, st.Writers)
			return err
		},
	}
}

func newLakeCopy(g *globals) *cobra.Command {
	var to, toState, toCatalog string
	cmd := &cobra.Command{
		Use:   "copy --to s3://BUCKET/PREFIX [--to-state DIR] [--to-catalog CATALOG]",
		Short: "Copy the lake's tables into another lake: a laptop's lake into S3 and a shared catalog",
		Long: `copy copies the current rows of every table of the lake (--lake, --state, --catalog) into another
lake (--to, --to-state, --to-catalog, which take what --lake, --state and --catalog take): each
table's Parquet files under the same paths, registered in the other lake's Iceberg catalog, and
the tables' columns. Nothing is rewritten. The lake's API tokens and sources (osprey token,
osprey source) are copied into the other lake's directory when it has none.

It is safe to interrupt and to run again: files the other lake has already are skipped. Stop
osprey serve and other writers of the lake first: rows written during the copy may be left
behind. What osprey serve keeps of its own progress (its log position, alert state) is not
copied: start serve on the new lake with its sources drained.`,
		Example: `  osprey lake copy --lake ./osprey-data --to s3://sec-lake/osprey --to-catalog "$OSPREY_CATALOG_DSN"
  osprey lake copy --to s3://sec-lake/osprey --to-catalog glue --to-state /var/lib/osprey`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return errors.New("--to is required: the lake to copy into (s3://bucket/prefix or a directory)")
			}
			l, err := g.readLake()
			if err != nil {
				return err
			}
			dg := &globals{lakeDir: to, state: toState, catalog: toCatalog}
			dst, err := dg.openLake()
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			out := cmd.OutOrStdout()
			st, err := l.Copy(cmd.Context(), dst, func(db, table string, files, of int) {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s.%s: %d of %d files\n", db, table, files, of)
			})
			fmt.Fprintf(out, "copied %d files (%s rows, %s) into %s; %d tables created\n", st.Files, count(st.Rows), bytesText(st.Bytes), dst.Location(), st.Tables)
			if err != nil {
				return err
			}
			for _, name := range []string{lake.TokensFile(l.Dir()), config.LakeSourcesFile(l.Dir())} {
				target := filepath.Join(lake.StateDir(dst.Dir()), filepath.Base(name))
				if _, err := os.Stat(target); err == nil {
					continue
				}
				if b, err := os.ReadFile(name); err == nil {
					if err := durable.WriteFile(target, b, 0o600); err != nil {
						return err
					}
					fmt.Fprintf(out, "copied %s into %s\n", filepath.Base(name), lake.StateDir(dst.Dir()))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the lake to copy into: s3://bucket/prefix or a directory (required)")
	cmd.Flags().StringVar(&toState, "to-state", "", "its local directory, when it is in S3 (default ~/.local/state/osprey/s3/<bucket>/<prefix>)")
	cmd.Flags().StringVar(&toCatalog, "to-catalog", "", "its Iceberg catalog: sqlite (default), a postgres:// URL, or glue")
	return cmd
}
