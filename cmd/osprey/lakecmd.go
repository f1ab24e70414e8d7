package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/ingest/pipeline"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/units"
)

func newLake(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lake",
		Short: "Maintain the lake: compact the files of past hours",
	}
	var olderThan time.Duration
	compact := &cobra.Command{
		Use:   "compact",
		Short: "Merge the files of each partition whose hour is over into one",
		Long: `Each flush of osprey serve (every minute by default) adds a file to each partition it has
rows for. compact merges the files of every partition whose hour ended more than --older-than
ago into one, copying row groups without decoding them; the merged file replaces the others in
one step. osprey serve does this by itself every 10 minutes; run it by hand after large
ingests with osprey ingest, or from cron when serve is not used.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := lake.OpenExisting(g.lakeDir)
			if err != nil {
				return err
			}
			w, err := l.NewWriter(lake.WriterOptions{Logger: g.logger()})
			if err != nil {
				return err
			}
			defer w.Close()
			st, err := pipeline.CompactLake(cmd.Context(), l, w, time.Now().Add(-olderThan))
			fmt.Fprintf(cmd.OutOrStdout(), "compacted %d partitions: %d files into %d (%d rows, %s)\n",
				st.Partitions, st.FilesIn, st.FilesOut, st.Rows, humanBytes(st.Bytes))
			return err
		},
	}
	olderThan = time.Hour
	compact.Flags().Var((*units.Duration)(&olderThan), "older-than", "compact partitions whose hour ended at least this long ago")
	cmd.AddCommand(compact)
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
