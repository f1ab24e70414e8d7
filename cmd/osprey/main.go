// Command osprey is an embedded security data lake: it ingests security and audit logs into
// Hive-partitioned Parquet tables, normalized the way Panther does, and answers SQL over them.
//
// Each command is in a file of its own; this file holds the root command and what they share.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/lake"
)

// exitError carries a command's exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// globals are the flags of every command.
type globals struct {
	lakeDir    string
	state      string
	catalog    string
	logLevel   string
	cpuProfile string
	memProfile string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run runs the command line and returns the exit code.
func run(ctx context.Context, args []string) int {
	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(os.Stderr, "osprey:", err)
		return 1
	}
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "osprey",
		Short: "An embedded security data lake: ingest, normalize and search security logs with SQL",
		Long: `Osprey ingests security and audit logs (files, stdin), normalizes them the way Panther does
(typed log schemas, p_ standard fields, p_any_* indicators) into Hive-partitioned Parquet tables in
a local lake directory, and answers SQL over them with DuckDB, Panther's time macros included.

  osprey ingest --log-type Panther.Audit audit.jsonl.gz
  osprey sql -c "SELECT actionName, count(*) FROM panther_logs.panther_audit WHERE p_occurs_since('1 day') GROUP BY 1"`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	defLake := os.Getenv("OSPREY_LAKE")
	if defLake == "" {
		defLake = "osprey-data"
	}
	root.PersistentFlags().StringVar(&g.lakeDir, "lake", defLake, "lake directory, or s3://bucket/prefix (env OSPREY_LAKE)")
	root.PersistentFlags().StringVar(&g.state, "state", os.Getenv("OSPREY_STATE"), "a lake in S3: its local directory (env OSPREY_STATE; default ~/.local/state/osprey/s3/<bucket>/<prefix>)")
	root.PersistentFlags().StringVar(&g.catalog, "catalog", os.Getenv("OSPREY_CATALOG"), "the lake's Iceberg catalog: sqlite (default), a postgres:// URL, glue, or an Iceberg REST catalog's https:// URI (env OSPREY_CATALOG; a REST catalog's secrets in OSPREY_REST_CREDENTIAL or OSPREY_REST_TOKEN)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&g.cpuProfile, "cpuprofile", "", "write a CPU profile to this file (for performance work)")
	root.PersistentFlags().StringVar(&g.memProfile, "memprofile", "", "write a heap profile to this file when the command ends")
	root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentFlags().MarkHidden("memprofile")
	var stopProfile func()
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		var err error
		stopProfile, err = g.startProfiles()
		return err
	}
	root.PersistentPostRun = func(cmd *cobra.Command, args []string) {
		if stopProfile != nil {
			stopProfile()
		}
	}
	root.AddCommand(newIngest(g), newSQL(g), newExport(g), newServe(g), newSource(g), newLake(g), newSchema(g), newDetect(g), newAlerts(g), newSchedule(g), newToken(g), newQuickstart(g), newQueryWorker())
	return root
}

// startProfiles starts the profiles asked for and returns the function that writes them.
func (g *globals) startProfiles() (func(), error) {
	var cpu *os.File
	if g.cpuProfile != "" {
		f, err := os.Create(g.cpuProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		cpu = f
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
		if g.memProfile != "" {
			if f, err := os.Create(g.memProfile); err == nil {
				runtime.GC()
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
	}, nil
}

func (g *globals) logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func defaultWriterOptions(g *globals) lake.WriterOptions {
	o := lake.DefaultWriterOptions()
	o.Logger = g.logger()
	return o
}

// openLake opens the lake for writing, creating it if needed.
func (g *globals) openLake() (*lake.Lake, error) {
	o, err := g.lakeOptions()
	if err != nil {
		return nil, err
	}
	return lake.OpenWith(context.Background(), o)
}

// readLake opens an existing lake for reading.
func (g *globals) readLake() (*lake.Lake, error) {
	o, err := g.lakeOptions()
	if err != nil {
		return nil, err
	}
	return lake.OpenExistingWith(context.Background(), o)
}

// lakeOptions says where the lake of --lake, --state and --catalog is, as a configuration
// file would (config.Config.LakeOptions); the bucket of a lake in S3 is reached with the AWS
// SDK's standard configuration (AWS_REGION, AWS_ENDPOINT_URL_S3, credentials, profiles).
func (g *globals) lakeOptions() (lake.Options, error) {
	cfg := g.config(config.Default())
	if err := cfg.Validate(); err != nil {
		return lake.Options{}, err
	}
	return cfg.LakeOptions()
}

// config sets the lake of a configuration from the flags.
func (g *globals) config(cfg *config.Config) *config.Config {
	cfg.Lake, cfg.State = g.lakeDir, g.state
	switch {
	case g.catalog == "" || g.catalog == "sqlite":
		cfg.Catalog = config.Catalog{}
	case strings.HasPrefix(g.catalog, "postgres://") || strings.HasPrefix(g.catalog, "postgresql://"):
		cfg.Catalog = config.Catalog{Type: "postgres", DSN: g.catalog}
	case strings.HasPrefix(g.catalog, "https://") || strings.HasPrefix(g.catalog, "http://"):
		// An Iceberg REST catalog; its secrets from the environment.
		cfg.Catalog = config.Catalog{Type: "rest", URI: g.catalog, Warehouse: os.Getenv("OSPREY_REST_WAREHOUSE"),
			CredentialEnv: "OSPREY_REST_CREDENTIAL", TokenEnv: "OSPREY_REST_TOKEN", SigV4: os.Getenv("OSPREY_REST_SIGV4")}
	default:
		cfg.Catalog = config.Catalog{Type: g.catalog}
	}
	return cfg
}
