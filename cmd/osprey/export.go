package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/query"
)

type exportOptions struct {
	table, since, where, out string
	partitioned              bool
	memoryLimit              string
}

func newExport(g *globals) *cobra.Command {
	o := &exportOptions{}
	cmd := &cobra.Command{
		Use:   "export --table DB.TABLE --out DIR|FILE.parquet [flags]",
		Short: "Write a table's rows as Parquet files other engines read",
		Long: `Export writes the rows of a lake table, optionally of a recent time range and matching an SQL
condition, as Parquet: one FILE.parquet, DIR/<table>.parquet, or with --partitioned one file a
partition under DIR/year=YYYY/month=MM/day=DD/hour=HH/ (Hive layout; the partition columns are in
the paths, not in the files). Files are zstd-compressed, timestamps TIMESTAMP(MICROS, UTC),
objects groups and arrays 3-level lists: DuckDB, Spark, Trino, Athena, pandas and JavaScript
readers take them. The condition runs in the same locked session as osprey sql.`,
		Example: `  osprey export --table panther_logs.panther_audit --since '7 days' --out audit.parquet
  osprey export --table panther_logs.linux_auditd --where "type = 'USER_LOGIN'" --out logins/ --partitioned`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.table, "table", "", "the table, such as panther_logs.panther_audit (required)")
	f.StringVar(&o.since, "since", "", "only rows of this recent span, as p_occurs_since takes it: '7 days', '6 h', 3600")
	f.StringVar(&o.where, "where", "", "only rows matching this SQL condition")
	f.StringVar(&o.out, "out", "", "a .parquet file, or a directory (required)")
	f.BoolVar(&o.partitioned, "partitioned", false, "one file per hour partition in Hive layout under --out")
	f.StringVar(&o.memoryLimit, "memory-limit", "", "DuckDB memory limit, such as 4GB (default: a quarter of RAM)")
	return cmd
}

func runExport(ctx context.Context, g *globals, o *exportOptions) error {
	if o.table == "" || o.out == "" {
		return errors.New("give --table DB.TABLE and --out DIR|FILE.parquet")
	}
	db, table, ok := strings.Cut(o.table, ".")
	if !ok {
		db, table = "panther_logs", o.table
	}
	l, err := g.readLake()
	if err != nil {
		return err
	}
	q, err := query.Open(ctx, l, query.Options{MemoryLimit: o.memoryLimit})
	if err != nil {
		return err
	}
	defer q.Close()
	st, err := q.Export(ctx, query.ExportOptions{DB: db, Table: table, Since: o.since, Where: o.where, Out: o.out, Partitioned: o.partitioned})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "exported %d rows of %s.%s to %d file(s) in %s\n", st.Rows, db, table, st.Files, o.out)
	return nil
}
