package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/infer"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/schema/schematest"
	"github.com/ospreyhq/osprey/ingest/source/stream"
)

// loadRegistry returns the built-in log types and the custom ones of a schema directory.
func loadRegistry(dir string) (*logtypes.Registry, error) {
	reg, err := logtypes.Builtin()
	if err != nil {
		return nil, err
	}
	if dir != "" {
		if _, err := reg.LoadDir(dir); err != nil {
			return nil, fmt.Errorf("custom schemas: %w", err)
		}
	}
	return reg, nil
}

func newSchema(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "List, show, infer, test and try log schemas",
		Long: `Log types are described by log schemas in Panther's YAML format: the built-in ones are in the
binary, custom ones are read from a directory given with --schemas (every *.yml and *.yaml file
under it; *_tests.yml files hold tests).

  osprey schema list                              the log types and their tables
  osprey schema show AWS.ALB                      a log type's fields, types, indicators and table
  osprey schema infer app.jsonl > app.yml         a schema for sample JSON records
  osprey schema test ./schemas                    run the *_tests.yml files of ./schemas
  osprey schema parse --schemas ./schemas app.log print records as the rows they make`,
	}
	cmd.PersistentFlags().StringVar(&dir, "schemas", "", "directory of custom log schemas (*.yml) to add to the built-in log types")
	cmd.AddCommand(newSchemaList(&dir), newSchemaShow(&dir), newSchemaInfer(), newSchemaTest(&dir), newSchemaParse(&dir))
	return cmd
}

func newSchemaList(dir *string) *cobra.Command {
	var markdown bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the log types by vendor, with their tables and parsers",
		Long: `List prints every log type, built-in and custom (--schemas), grouped by vendor (the name's
first part), with its table in panther_logs, its parser and where its schema comes from.
--markdown prints the table of the README's "Log types" section instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := loadRegistry(*dir)
			if err != nil {
				return err
			}
			all := reg.All()
			if markdown {
				return listMarkdown(cmd.OutOrStdout(), all)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "VENDOR\tLOG TYPE\tTABLE\tPARSER\tSOURCE")
			builtin, last := 0, ""
			for _, lt := range all {
				vendor := lt.Vendor()
				if vendor == last {
					vendor = ""
				} else {
					last = vendor
				}
				if lt.Builtin {
					builtin++
				}
				fmt.Fprintf(w, "%s\t%s\t%s.%s\t%s\t%s\n", vendor, lt.Name, ingest.DBLogs, lt.Table.Table, lt.ParserName(), source(lt))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\n%d log types (%d built-in, %d custom)\n", len(all), builtin, len(all)-builtin)
			return nil
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print the README's table of log types: a row per vendor, each type with its table")
	return cmd
}

// listMarkdown writes a Markdown table of log types, a row per vendor.
func listMarkdown(out io.Writer, all []*logtypes.LogType) error {
	var b strings.Builder
	b.WriteString("| vendor | log types and their tables (`panther_logs.` omitted) |\n|---|---|\n")
	for i := 0; i < len(all); {
		j := i
		var types []string
		for ; j < len(all) && all[j].Vendor() == all[i].Vendor(); j++ {
			types = append(types, fmt.Sprintf("`%s` (`%s`)", all[j].Name, all[j].Table.Table))
		}
		fmt.Fprintf(&b, "| %s | %s |\n", all[i].Vendor(), strings.Join(types, ", "))
		i = j
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func source(lt *logtypes.LogType) string {
	if lt.Builtin {
		return "built-in"
	}
	return lt.Schema.File
}

func newSchemaShow(dir *string) *cobra.Command {
	var asYAML bool
	cmd := &cobra.Command{
		Use:   "show LOG_TYPE",
		Short: "Show a log type: its table, parser, fields, types, indicators and an example row",
		Long: `Show prints a log type's table and parser, then its fields: type, whether required, time
formats, indicators and validation, nested fields indented under their object. The standard p_
columns of the table follow, the p_any_* ones being those the indicators can fill, then, for a
built-in type, a sample record and the row it gives. --yaml prints the schema file instead.`,
		Example: "  osprey schema show AWS.CloudTrail\n  osprey schema show --schemas ./schemas Custom.MyApp --yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := loadRegistry(*dir)
			if err != nil {
				return err
			}
			lt, err := reg.Lookup(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asYAML {
				var data []byte
				if lt.Builtin {
					data, err = logtypes.BuiltinSchema(lt.Schema.File)
				} else {
					data, err = os.ReadFile(lt.Schema.File)
				}
				if err != nil {
					return err
				}
				_, err = out.Write(data)
				return err
			}
			showLogType(out, lt)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asYAML, "yaml", false, "print the schema file")
	return cmd
}

func showLogType(out io.Writer, lt *logtypes.LogType) {
	s := lt.Schema
	fmt.Fprintf(out, "Log type:    %s\n", lt.Name)
	fmt.Fprintf(out, "Table:       %s.%s\n", ingest.DBLogs, lt.Table.Table)
	fmt.Fprintf(out, "Parser:      %s\n", lt.ParserName())
	fmt.Fprintf(out, "Source:      %s\n", source(lt))
	if s.Description != "" {
		fmt.Fprintf(out, "Description: %s\n", strings.TrimSpace(s.Description))
	}
	if s.ReferenceURL != "" {
		fmt.Fprintf(out, "Reference:   %s\n", s.ReferenceURL)
	}
	fmt.Fprintln(out, "\nFields:")
	var table strings.Builder
	w := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	showFields(w, s.Fields, "  ")
	w.Flush()
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		io.WriteString(out, strings.TrimRight(line, " \n"))
		if strings.HasSuffix(line, "\n") {
			io.WriteString(out, "\n")
		}
	}
	std := []string{batch.FieldLogType, batch.FieldRowID, batch.FieldEventTime, batch.FieldParseTime, batch.FieldSourceID, batch.FieldSourceLabel}
	for _, k := range lt.Table.Kinds {
		std = append(std, k.Column())
	}
	fmt.Fprintf(out, "\nStandard fields: %s\n", strings.Join(std, ", "))
	if record, row, ok := lt.Example(); ok {
		fmt.Fprintf(out, "\nExample record (testdata/samples/%s.*):\n  %s\n", lt.Table.Table, strings.TrimSpace(record))
		fmt.Fprintf(out, "\nThe row it gives (p_row_id, p_parse_time and the p_source_ fields left out):\n")
		for _, line := range strings.Split(strings.TrimSpace(row), "\n") {
			fmt.Fprintf(out, "  %s\n", line)
		}
	}
}

func showFields(w io.Writer, fields []logschema.Field, indent string) {
	for _, f := range fields {
		v := &f.Value
		typ := string(v.Type)
		for e := v.Element; e != nil; e = e.Element {
			typ += " of " + string(e.Type)
			v = e
		}
		var notes []string
		if f.Required {
			notes = append(notes, "required")
		}
		if v.IsEventTime || f.IsEventTime {
			notes = append(notes, "event time")
		}
		if formats := v.Formats(); len(formats) > 0 {
			notes = append(notes, "time format "+strings.Join(formats, " | "))
		}
		inds := slices.Clone(f.Indicators)
		for e := f.Element; e != nil; e = e.Element {
			inds = append(inds, e.Indicators...)
		}
		if len(inds) > 0 {
			notes = append(notes, "indicators "+strings.Join(inds, ", "))
		}
		if val := f.Validate; val != nil {
			if len(val.Allow) > 0 {
				notes = append(notes, "allow "+strings.Join(val.Allow, ", "))
			}
			if len(val.Deny) > 0 {
				notes = append(notes, "deny "+strings.Join(val.Deny, ", "))
			}
		}
		if f.IsEmbeddedJSON {
			notes = append(notes, "embedded JSON")
		}
		switch {
		case f.Rename != nil:
			notes = append(notes, "from "+f.Rename.From)
		case f.Copy != nil:
			notes = append(notes, "copy of "+f.Copy.From)
		case f.Concat != nil:
			notes = append(notes, "concat of "+strings.Join(f.Concat.Paths, ", "))
		case f.Split != nil:
			notes = append(notes, fmt.Sprintf("part %d of %s split by %q", f.Split.Index, f.Split.From, f.Split.Separator))
		}
		if f.Mask != nil {
			notes = append(notes, "masked ("+cmpOr(f.Mask.Type, "redact")+")")
		}
		fmt.Fprintf(w, "%s%s\t%s\t%s\n", indent, f.Name, typ, strings.Join(notes, "; "))
		if len(v.Fields) > 0 {
			showFields(w, v.Fields, indent+"  ")
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func newSchemaInfer() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "infer [FILE...]",
		Short: "Write a log schema for sample JSON records",
		Long: `Infer reads JSON records (JSON lines, a JSON array or JSON documents; stdin when no file is
given) and prints a log schema that fits all of them: each field's type widened until every value
fits (int and float make float, mixed scalars make string, objects mixed with scalars make json),
timestamps recognized from their format (the first top-level one is the event time), indicators
for values that are all IP addresses, URLs, email addresses, ARNs, hashes or MAC addresses, and
top-level fields present in every record required. Edit the result before use: names, required
fields and indicators are guesses.`,
		Example: "  osprey schema infer --name Custom.MyApp app.jsonl > schemas/myapp.yml",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSchemaName(name); err != nil {
				return err
			}
			in := infer.New()
			err := eachInput(args, []string{"Records"}, func(src string, n int, rec []byte) error {
				if err := in.Add(rec); err != nil {
					return fmt.Errorf("%s: record %d: %w", src, n, err)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if in.Records() == 0 {
				return errors.New("no records read")
			}
			if skipped := in.Skipped(); len(skipped) > 0 {
				slices.Sort(skipped)
				fmt.Fprintf(cmd.ErrOrStderr(), "keys left out (not valid field names, reserved, or differing from another only in case): %s\n", strings.Join(skipped, ", "))
			}
			_, err = cmd.OutOrStdout().Write(infer.YAML(in.Schema(name)))
			return err
		},
	}
	cmd.Flags().StringVar(&name, "name", "Custom.Inferred", "name of the log type")
	return cmd
}

func checkSchemaName(name string) error {
	s := &logschema.Schema{Schema: name, Fields: []logschema.Field{{Name: "x", Value: logschema.Value{Type: logschema.TypeString}}}}
	return s.Validate()
}

// eachInput calls fn with each record of the files (stdin when none; gzip and zstd read as
// ingest reads them), numbered from 1.
func eachInput(files []string, envelopes []string, fn func(src string, n int, rec []byte) error) error {
	if len(files) == 0 {
		files = []string{"-"}
	}
	for _, f := range files {
		src := f
		var r io.Reader = os.Stdin
		if f == "-" {
			src = "stdin"
		} else {
			file, err := os.Open(f)
			if err != nil {
				return err
			}
			defer file.Close()
			r = file
		}
		dr, _, err := stream.Decompress(r)
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		data, err := io.ReadAll(dr)
		dr.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		recs, err := schematest.Records(data, envelopes)
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		for i, r := range recs {
			if err := fn(src, i+1, r); err != nil {
				return err
			}
		}
	}
	return nil
}

func newSchemaTest(dir *string) *cobra.Command {
	var verbose bool
	var parseTime string
	cmd := &cobra.Command{
		Use:   "test DIR [TESTS...]",
		Short: "Run log schema tests (Panther's *_tests.yml format)",
		Long: `Test loads the schemas of DIR (with the built-in log types they do not replace) and runs the
test cases of the given test files or directories, by default every *_tests.yml file under DIR.
A case (Panther's format: name, logType, input, and result or results) passes when the input
parses into the expected rows: fields compared by value (timestamps as instants, numbers as
numbers, p_any_* as sets), p_row_id, p_parse_time and the p_source_ fields left out. Failures are
listed with each difference; the status is 1 when any case fails.`,
		Example: "  osprey schema test ./schemas\n  osprey schema test ./schemas ./schemas/tests/myapp_tests.yml",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			when, err := parseTimeFlag(parseTime)
			if err != nil {
				return err
			}
			reg := logtypes.New()
			if _, err := reg.LoadDir(args[0]); err != nil && !errors.Is(err, logtypes.ErrNoSchemas) {
				return err
			}
			if *dir != "" && *dir != args[0] {
				if _, err := reg.LoadDir(*dir); err != nil {
					return err
				}
			}
			if err := reg.AddBuiltins(); err != nil {
				return err
			}
			tests := args[1:]
			if len(tests) == 0 {
				tests = args[:1]
			}
			files, err := testFiles(tests)
			if err != nil {
				return err
			}
			if len(files) == 0 {
				return fmt.Errorf("no test files (*_tests.yml) in %s", strings.Join(tests, ", "))
			}
			out := cmd.OutOrStdout()
			passed, failed := 0, 0
			for _, f := range files {
				cases, err := schematest.LoadFile(f)
				if err != nil {
					return err
				}
				for i := range cases {
					c := &cases[i]
					if err := schematest.Run(reg, c, when); err != nil {
						failed++
						fmt.Fprintf(out, "FAIL %s:%d: %s\n", f, c.Line, c.Name)
						var fe *schematest.Failure
						if errors.As(err, &fe) && fe.Err == nil {
							for _, d := range fe.Diffs {
								fmt.Fprintf(out, "    %s\n", d)
							}
						} else if errors.As(err, &fe) {
							fmt.Fprintf(out, "    %v\n", fe.Err)
						}
						continue
					}
					passed++
					if verbose {
						fmt.Fprintf(out, "PASS %s:%d: %s\n", f, c.Line, c.Name)
					}
				}
			}
			fmt.Fprintf(out, "%d passed, %d failed (%d %s)\n", passed, failed, len(files), plural(len(files), "file", "files"))
			if failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list the cases that pass too")
	cmd.Flags().StringVar(&parseTime, "parse-time", "", "p_parse_time of the rows, RFC 3339 (default now); completes year-less timestamps")
	return cmd
}

// testFiles returns the *_tests.yml (and .yaml) files of the given files and directories.
func testFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(path, "_tests.yml") || strings.HasSuffix(path, "_tests.yaml")) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

func parseTimeFlag(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--parse-time: %w", err)
	}
	return t, nil
}

func newSchemaParse(dir *string) *cobra.Command {
	var logTypes []string
	var parseTime string
	cmd := &cobra.Command{
		Use:   "parse [FILE...]",
		Short: "Parse records and print the rows they make, as JSON lines",
		Long: `Parse reads log records (stdin when no file is given), parses each as the given log types
(--log-type, repeatable) or as every built-in and custom log type, and prints the row each makes
as a JSON line: the log type's fields and the standard fields (p_log_type, p_event_time,
p_parse_time, p_any_*). Nothing is written to the lake. A record no log type accepts is reported
on stderr with the reason of each type, and the status is then 1.`,
		Example: "  osprey schema parse --schemas ./schemas app.log\n  tail -n 5 /var/log/nginx/access.log | osprey schema parse -t Nginx.Access",
		RunE: func(cmd *cobra.Command, args []string) error {
			when, err := parseTimeFlag(parseTime)
			if err != nil {
				return err
			}
			reg, err := loadRegistry(*dir)
			if err != nil {
				return err
			}
			types := reg.All()
			if len(logTypes) > 0 {
				types = nil
				for _, name := range logTypes {
					lt, err := reg.Lookup(name)
					if err != nil {
						return err
					}
					types = append(types, lt)
				}
			}
			var envelopes []string
			parsers := make([]logtypes.Parser, len(types))
			builders := make([]*batch.Builder, len(types))
			ids := batch.NewRowIDs()
			for i, lt := range types {
				if parsers[i], err = lt.NewParser(); err != nil {
					return err
				}
				builders[i] = batch.NewBuilder(lt.Table, ids)
				builders[i].SetParseTime(when)
				if lt.Envelope != "" && !slices.Contains(envelopes, lt.Envelope) {
					envelopes = append(envelopes, lt.Envelope)
				}
			}
			cls := logtypes.NewClassifier(types)
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			failed := 0
			err = eachInput(args, envelopes, func(src string, n int, rec []byte) error {
				var reasons []ingest.Refusal
				order := []int{0}
				if len(types) > 1 {
					order = cls.Candidates(rec)
				}
				for _, i := range order {
					lt := types[i]
					isJSON := logtypes.IsJSONObject(rec)
					if len(types) > 1 && !lt.ReadsJSON() {
						if err := lt.Check(rec); err != nil {
							if !isJSON {
								reasons = append(reasons, ingest.Refusal{LogType: lt.Name, Reason: err.Error()})
							}
							continue
						}
					}
					b := builders[i]
					b.Begin()
					if err := parsers[i].Parse(rec, b); err != nil {
						b.Rollback()
						if errors.Is(err, logtypes.ErrSkip) {
							return nil
						}
						if !(isJSON && !lt.ReadsJSON()) {
							reasons = append(reasons, ingest.Refusal{LogType: lt.Name, Reason: err.Error()})
						}
						continue
					}
					b.End()
					cls.Won(i)
					r := b.Build()
					row := batch.AppendRowJSON(nil, r, 0)
					r.Release()
					out.Write(dropFields(row, batch.FieldRowID, batch.FieldSourceID, batch.FieldSourceLabel))
					out.WriteByte('\n')
					return nil
				}
				if len(reasons) == 0 {
					reasons = append(reasons, ingest.Refusal{Reason: cls.NoneTakes()})
				}
				failed++
				out.Flush()
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: record %d: %s\n", src, n, ingest.Explain(reasons))
				return nil
			})
			if err != nil {
				return err
			}
			if failed > 0 {
				out.Flush()
				fmt.Fprintf(cmd.ErrOrStderr(), "%d %s could not be parsed\n", failed, plural(failed, "record", "records"))
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&logTypes, "log-type", "t", nil, "log type of the records (repeatable); default: try every built-in and custom type")
	cmd.Flags().StringVar(&parseTime, "parse-time", "", "p_parse_time of the rows, RFC 3339 (default now); completes year-less timestamps")
	return cmd
}

// dropFields removes string-valued members from a row's JSON object.
func dropFields(row []byte, names ...string) []byte {
	s := string(row)
	for _, f := range names {
		key := `"` + f + `":"`
		i := strings.Index(s, key)
		if i < 0 {
			continue
		}
		end := strings.IndexByte(s[i+len(key):], '"')
		j := i + len(key) + end + 1
		if j < len(s) && s[j] == ',' {
			j++
		} else if i > 0 && s[i-1] == ',' {
			i--
		}
		s = s[:i] + s[j:]
	}
	return []byte(s)
}
