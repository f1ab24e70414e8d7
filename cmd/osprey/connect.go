package main

import (
	"cmp"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/internal/awsx"
	"github.com/ospreyhq/osprey/lake/connect"
)

func newLakeConnect(g *globals) *cobra.Command {
	var engine string
	names := make([]string, len(connect.Engines))
	for i, e := range connect.Engines {
		names[i] = string(e)
	}
	cmd := &cobra.Command{
		Use:   "connect --engine " + strings.Join(names, "|"),
		Short: "Print what Athena, Trino, Spark, Snowflake or DuckDB needs to read the lake's tables",
		Long: `connect prints exactly what to configure or run on an engine so that it reads the lake's Iceberg
tables: a Trino catalog file, a spark-sql command, Snowflake or DuckDB SQL, or the aws glue
commands that register the tables for Athena. The text depends on where the lake is (a local
directory or s3://bucket/prefix, with --lake and --state), on its catalog (--catalog: the
embedded SQLite catalog, a postgres:// URL, glue, or an Iceberg REST catalog's https:// URI) and on the AWS region and endpoint
(AWS_REGION, AWS_ENDPOINT_URL_S3, or lake options in the configuration).

An engine that reads the lake's catalog sees every commit: Trino and Spark read a PostgreSQL
catalog (Iceberg's JDBC catalog; the SQLite one from this machine only), every engine reads
Glue, and every engine but Athena reads a REST catalog (Athena reads S3 Tables once integrated
with the AWS analytics services). An engine that cannot read the catalog is given each table's current metadata file
instead (Athena and Snowflake without Glue, DuckDB, Trino or Spark elsewhere than a SQLite
catalog): that is a point-in-time registration, which osprey's next commits leave behind and
which breaks once osprey deletes the file, about 10 commits later. Run connect again to
refresh it, or use a catalog the engine reads. A combination that cannot work (Athena or
Snowflake on a local lake or an S3-compatible store) fails with what to do instead.

No password is printed: a PostgreSQL catalog's password is read from $OSPREY_CATALOG_PASSWORD
by the printed configuration, a REST catalog's credential or token from $OSPREY_REST_CREDENTIAL
or $OSPREY_REST_TOKEN (or left to a placeholder).`,
		Example: `  osprey lake connect --engine duckdb > osprey.sql && duckdb -init osprey.sql
  osprey --lake s3://sec-lake/osprey --catalog postgres://osprey@db:5432/lake lake connect --engine trino
  osprey --lake s3://sec-lake/osprey lake connect --engine athena > register.sh && sh register.sh`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := connect.ParseEngine(engine)
			if err != nil {
				return err
			}
			o, err := g.lakeOptions()
			if err != nil {
				return err
			}
			l, err := g.readLake()
			if err != nil {
				return err
			}
			cat, err := l.OpenCatalog(cmd.Context())
			if err != nil {
				return err
			}
			tables, err := cat.Current(cmd.Context())
			cat.Close()
			if err != nil {
				return err
			}
			in := connect.Lake{Location: l.Location(), Dir: l.Dir(), Region: o.AWS.Region, Endpoint: o.AWS.Endpoint,
				PathStyle: o.AWS.PathStyle, Catalog: o.Catalog, DSN: o.CatalogDSN, REST: o.REST, Tables: tables}
			if in.Region == "" {
				in.Region = cmp.Or(os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))
			}
			if in.Endpoint == "" && awsx.EnvEndpoint() != "" {
				// As the lake's own S3 client does (objstore.Open): an endpoint from the
				// environment is a store on a host and port, addressed path-style.
				in.Endpoint, in.PathStyle = awsx.EnvEndpoint(), true
			}
			if !l.Remote() {
				in.Region, in.Endpoint, in.PathStyle = "", "", false
			}
			if len(tables) == 0 {
				return fmt.Errorf("the lake %s has no tables yet: ingest something first", l.Location())
			}
			return connect.Write(cmd.OutOrStdout(), e, in)
		},
	}
	cmd.Flags().StringVar(&engine, "engine", "", "the engine to connect: "+strings.Join(names, ", "))
	return cmd
}
