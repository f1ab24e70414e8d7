package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/config"
)

func newToken(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke the API tokens of osprey serve's query API",
		Long: `API tokens authorize POST /v1/query on osprey serve:

  curl -H "Authorization: Bearer $TOKEN" -d '{"sql": "SELECT count(*) FROM panther_logs.panther_audit"}' \
    http://127.0.0.1:8080/v1/query

The body is JSON: sql (one query), params (named parameters, $name in the SQL), format (json,
jsonl, csv or parquet; default json), timeout (default 30s, at most 5m) and max_rows (default
10,000, at most 1,000,000). Queries read the lake and nothing else, as osprey sql's do. The
answer's X-Osprey-Rows and X-Osprey-Truncated headers give the row count and whether max_rows
cut it.

Tokens are kept in the lake (_osprey/tokens.json, mode 0600) as hashes: a token's secret is
printed once, when it is created. serve sees new and revoked tokens at once.`,
	}
	var role string
	create := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a token and print its secret (once)",
		Example: "  osprey token create grafana --role read",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.openLake()
			if err != nil {
				return err
			}
			t, secret, err := config.CreateToken(l.Dir(), args[0], role)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "token %s (id %s, role %s) created; its secret is shown only now:\n", t.Name, t.ID, t.Role)
			fmt.Println(secret)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", config.RoleRead, "the token's role: read (run queries)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tokens (not their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.readLake()
			if err != nil {
				return err
			}
			ts, err := config.LoadTokens(l.Dir())
			if err != nil {
				return err
			}
			if len(ts) == 0 {
				fmt.Println("no tokens")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.Created.Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke a token: requests with it are refused at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.readLake()
			if err != nil {
				return err
			}
			t, err := config.RevokeToken(l.Dir(), args[0])
			if err != nil {
				return err
			}
			fmt.Printf("token %s (id %s) revoked\n", t.Name, t.ID)
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
