// Package connect writes what another engine needs to read a lake's Iceberg tables: the catalog
// properties, files and statements for Athena, Trino, Spark, Snowflake and DuckDB, for each kind
// of catalog the lake may have (the embedded SQLite catalog, PostgreSQL, AWS Glue, an Iceberg
// REST catalog), and why a combination cannot work and what to do instead (`osprey lake connect`).
//
// Write is a pure function of a Lake (where the tables are, how the object store is reached,
// the catalog, and every table's current metadata file), so its text is tested without any
// engine. Nothing written holds a password: a PostgreSQL catalog's DSN is reduced to host, port,
// database and user, and the password is left to a variable or a placeholder; a REST catalog's
// OAuth2 credential or token is likewise read from a variable or left to a placeholder.
//
// Two facts of osprey's tables shape the text:
//   - The catalog's rows are Apache Iceberg's JDBC catalog schema (iceberg_tables,
//     iceberg_namespace_properties, with iceberg_type: schema V1) under the catalog name
//     "osprey", so Iceberg's JdbcCatalog (Spark, Trino) reads them live once it is named osprey.
//   - osprey deletes a table's metadata files beyond its last 10
//     (write.metadata.delete-after-commit.enabled, write.metadata.previous-versions-max in
//     lake/iceberg TableProperties). An engine given a metadata file rather than a catalog
//     (Athena and Snowflake without Glue, DuckDB's iceberg_scan, register_table) sees the
//     table as of that file, and loses it about 10 commits later; the text says so each time.
package connect

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// Engine is an engine osprey can say how to connect.
type Engine string

// Engines.
const (
	Athena    Engine = "athena"
	Trino     Engine = "trino"
	Spark     Engine = "spark"
	Snowflake Engine = "snowflake"
	DuckDB    Engine = "duckdb"
)

// Engines lists the engines, in the order help shows them.
var Engines = []Engine{Athena, Trino, Spark, Snowflake, DuckDB}

// Glue is the kind of an AWS Glue catalog: tables in Glue databases named like the lake's
// databases (panther_logs, ...).
const Glue = iceberg.Glue

// CatalogName is the catalog_name of every row osprey keeps in a SQL catalog; Iceberg's
// JdbcCatalog reads the rows of the catalog name it is initialized with (the Spark or Trino
// catalog's name, or Trino's iceberg.jdbc-catalog.catalog-name).
const CatalogName = "osprey"

// PasswordVar is the environment variable the text reads the PostgreSQL catalog's password
// from, so that no password is printed.
const PasswordVar = "OSPREY_CATALOG_PASSWORD"

// ErrCannot means the engine cannot read the lake as it is; the error says what to do instead.
var ErrCannot = errors.New("cannot connect")

// ParseEngine returns the engine named s.
func ParseEngine(s string) (Engine, error) {
	e := Engine(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Engines, e) {
		return e, nil
	}
	names := make([]string, len(Engines))
	for i, e := range Engines {
		names[i] = string(e)
	}
	if s == "" {
		return "", fmt.Errorf("--engine is required: one of %s", strings.Join(names, ", "))
	}
	return "", fmt.Errorf("unknown engine %q (want one of %s)", s, strings.Join(names, ", "))
}

// Lake is what the text is made from.
type Lake struct {
	// Location is where the tables are: s3://bucket/prefix, or the lake's local directory.
	Location string
	// Dir is the lake's local directory; the SQLite catalog is Dir/_osprey/catalog.db.
	Dir string
	// Region, Endpoint and PathStyle say how the bucket is reached: an Endpoint is an
	// S3-compatible store (MinIO, moto), not Amazon S3.
	Region    string
	Endpoint  string
	PathStyle bool
	// Catalog is the catalog's kind (iceberg.SQLite when empty) and DSN the PostgreSQL
	// catalog's database.
	Catalog iceberg.Kind
	DSN     string
	// REST reaches an Iceberg REST catalog (Catalog iceberg.REST). Its Credential and Token
	// only say which authentication the catalog takes: they are never written.
	REST iceberg.RESTOptions
	// Tables are the lake's tables with their current metadata files (iceberg.Catalog.Current).
	Tables []iceberg.Pointer
}

func (l Lake) remote() bool { return strings.HasPrefix(l.Location, "s3://") }

// amazonS3 reports whether the tables are in Amazon S3 itself, which Athena and Snowflake's S3
// volumes need.
func (l Lake) amazonS3() bool { return l.remote() && l.Endpoint == "" }

func (l Lake) kind() iceberg.Kind {
	if l.Catalog == "" {
		return iceberg.SQLite
	}
	return l.Catalog
}

func (l Lake) databases() []string {
	var dbs []string
	for _, t := range l.Tables {
		if !slices.Contains(dbs, t.DB) {
			dbs = append(dbs, t.DB)
		}
	}
	return dbs
}

// Write writes what engine e needs to read the lake's tables. It returns an error wrapping
// ErrCannot, and writes nothing, when the engine cannot read the lake as it is.
func Write(w io.Writer, e Engine, l Lake) error {
	l.Location = strings.TrimSuffix(l.Location, "/")
	switch k := l.kind(); k {
	case iceberg.SQLite, iceberg.Postgres:
	case Glue:
		if !l.remote() {
			return fmt.Errorf("%w: a Glue catalog needs the lake in S3 (--lake s3://bucket/prefix)", ErrCannot)
		}
	case iceberg.REST:
		if !l.remote() {
			return fmt.Errorf("%w: a REST catalog needs the lake in S3 (--lake s3://bucket/prefix)", ErrCannot)
		}
		if l.REST.URI == "" {
			return errors.New("the rest catalog has no uri")
		}
	default:
		return fmt.Errorf("unknown catalog %q (want sqlite, postgres, glue or rest)", k)
	}
	var pg pgDSN
	if l.kind() == iceberg.Postgres {
		var err error
		if pg, err = parseDSN(l.DSN); err != nil {
			return err
		}
	}
	d := &doc{}
	var err error
	switch e {
	case Athena:
		err = athena(d, l, pg)
	case Trino:
		err = trino(d, l, pg)
	case Spark:
		err = spark(d, l, pg)
	case Snowflake:
		err = snowflake(d, l, pg)
	case DuckDB:
		err = duckdb(d, l, pg)
	default:
		_, err = ParseEngine(string(e))
	}
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, d.b.String())
	return err
}

// describe is the first lines of every text: the lake, its catalog and its tables.
func describe(d *doc, l Lake, pg pgDSN) {
	where := l.Location
	if l.remote() {
		switch {
		case l.Endpoint != "":
			where += " (S3-compatible store at " + l.Endpoint + ")"
		case l.Region != "":
			where += " (region " + l.Region + ")"
		}
	} else {
		where += " (a local directory)"
	}
	d.say("Lake: %s", where)
	switch l.kind() {
	case iceberg.SQLite:
		d.say("Catalog: embedded SQLite, %s", sqliteFile(l))
	case iceberg.Postgres:
		d.say("Catalog: PostgreSQL, database %s on %s:%s as user %s", pg.db, pg.host, pg.port, pg.userOr("<user>"))
	case Glue:
		d.say("Catalog: AWS Glue, databases %s", strings.Join(l.databases(), ", "))
	case iceberg.REST:
		d.say("Catalog: Iceberg REST at %s, %s, %s", l.REST.URI, l.warehouseOr("no warehouse"), l.restAuthText())
	}
	d.say("Tables: %d", len(l.Tables))
	d.blank()
}

func sqliteFile(l Lake) string { return iceberg.CatalogFile(l.Dir) }

// pointInTime is the warning printed with every registration of a metadata file.
func pointInTime(d *doc, live string) {
	d.say("These are point-in-time registrations: each names a table's current metadata file, so the")
	d.say("engine sees the table as it is now and nothing osprey commits after. osprey deletes a table's")
	d.say("metadata files beyond its last 10 (write.metadata.previous-versions-max), so a registered file")
	d.say("disappears about 10 commits later (minutes, with osprey serve flushing every minute) and the")
	d.say("engine then fails to read the table. Run osprey lake connect again to refresh them before use,")
	d.say("or, for tables that stay current, %s.", live)
}

// tableLocation returns a table's directory: its metadata file's location without
// /metadata/<file>.
// (path.Dir would turn s3:// into s3:/.)
func tableLocation(p iceberg.Pointer) string {
	i := strings.LastIndex(p.Location, "/metadata/")
	if i < 0 {
		return p.Location
	}
	return p.Location[:i]
}

// metadataFile returns the name of a table's metadata file.
func metadataFile(p iceberg.Pointer) string { return p.Location[strings.LastIndex(p.Location, "/")+1:] }

// pgDSN is a PostgreSQL DSN without its password.
type pgDSN struct {
	host, port, db, user string
	params               url.Values // those the JDBC driver takes too
	dropped              []string   // parameters not carried over
}

func (p pgDSN) userOr(placeholder string) string {
	if p.user == "" {
		return placeholder
	}
	return p.user
}

// jdbcParams are the libpq parameters PostgreSQL's JDBC driver takes under the same name
// (https://jdbc.postgresql.org/documentation/use/#connection-parameters).
var jdbcParams = []string{"sslmode", "sslrootcert", "sslcert", "sslkey"}

// jdbcURL returns the DSN as PostgreSQL's JDBC driver writes it:
// jdbc:postgresql://host:port/database[?sslmode=...], user and password given apart.
func (p pgDSN) jdbcURL() string {
	host := p.host
	if strings.Contains(host, ":") { // an IPv6 address
		host = "[" + host + "]"
	}
	u := "jdbc:postgresql://" + host + ":" + p.port + "/" + p.db
	if len(p.params) > 0 {
		u += "?" + p.params.Encode()
	}
	return u
}

// parseDSN reads a PostgreSQL DSN, a postgres:// URL or a key=value string as libpq and pgx
// take them, and keeps everything but the password.
func parseDSN(dsn string) (pgDSN, error) {
	p := pgDSN{host: "localhost", port: "5432", params: url.Values{}}
	kv := map[string]string{}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// url.Parse's error quotes the DSN, password included.
			return p, errors.New("catalog: the PostgreSQL DSN is not a valid URL")
		}
		if u.User != nil {
			kv["user"] = u.User.Username()
		}
		if h := u.Hostname(); h != "" {
			kv["host"] = h
		}
		if port := u.Port(); port != "" {
			kv["port"] = port
		}
		if db := strings.TrimPrefix(u.Path, "/"); db != "" {
			kv["dbname"] = db
		}
		for k, v := range u.Query() {
			kv[k] = v[0]
		}
	} else {
		var err error
		if kv, err = keyValues(dsn); err != nil {
			return p, err
		}
	}
	for k, v := range kv {
		switch k {
		case "host":
			p.host = v
		case "port":
			p.port = v
		case "dbname":
			p.db = v
		case "user":
			p.user = v
		case "password":
		default:
			if slices.Contains(jdbcParams, k) {
				p.params.Set(k, v)
			} else {
				p.dropped = append(p.dropped, k)
			}
		}
	}
	if p.db == "" {
		p.db = p.user // libpq's default database is the user's name
	}
	if p.db == "" {
		return p, errors.New("catalog: the PostgreSQL DSN names no database")
	}
	slices.Sort(p.dropped)
	return p, nil
}

// keyValues reads libpq's key=value connection string: values may be single-quoted, with \'
// and \\ escapes inside.
func keyValues(dsn string) (map[string]string, error) {
	bad := errors.New("catalog: the PostgreSQL DSN is neither a postgres:// URL nor key=value pairs")
	kv := map[string]string{}
	s := strings.TrimSpace(dsn)
	for s != "" {
		k, rest, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, bad
		}
		rest = strings.TrimLeft(rest, " \t")
		var v strings.Builder
		if strings.HasPrefix(rest, "'") {
			i, closed := 1, false
			for ; i < len(rest); i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
					v.WriteByte(rest[i])
					continue
				}
				if rest[i] == '\'' {
					closed = true
					break
				}
				v.WriteByte(rest[i])
			}
			if !closed {
				return nil, bad
			}
			rest = rest[i+1:]
		} else {
			end := strings.IndexAny(rest, " \t")
			if end < 0 {
				end = len(rest)
			}
			v.WriteString(rest[:end])
			rest = rest[end:]
		}
		kv[k] = v.String()
		s = strings.TrimSpace(rest)
	}
	return kv, nil
}

// doc accumulates a text: notes behind the comment marker of the language of the code that
// follows them, and code as it is to be copied.
type doc struct {
	b strings.Builder
	c string // comment marker: "#" or "--"
}

func (d *doc) say(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	for l := range strings.SplitSeq(line, "\n") {
		d.b.WriteString(strings.TrimRight(d.c+" "+l, " ") + "\n")
	}
}

func (d *doc) code(lines ...string) {
	for _, l := range lines {
		d.b.WriteString(l + "\n")
	}
}

func (d *doc) blank() { d.b.WriteString("\n") }

// schemas writes a CREATE SCHEMA of each database the lake's tables are in.
func (d *doc) schemas(l Lake) {
	for _, db := range l.databases() {
		d.code(fmt.Sprintf("CREATE SCHEMA IF NOT EXISTS %s;", db))
	}
}

// sqlString quotes s as a SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
