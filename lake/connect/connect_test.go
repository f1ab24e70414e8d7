package connect

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	s3Root   = "s3://sec-lake/osprey"
	password = "s3cr3t-p4ss"
	pgDSNURL = "postgres://osprey:" + password + "@db.internal:6432/lakecat?sslmode=require&pool_max_conns=4"
)

func tables(root string) []iceberg.Pointer {
	return []iceberg.Pointer{
		{DB: "panther_logs", Table: "aws_cloudtrail", Location: root + "/panther_logs/aws_cloudtrail/metadata/00042-6e19dbcb-169d-4581-881f-ab0c27f400b7.metadata.json"},
		{DB: "panther_logs", Table: "panther_audit", Location: root + "/panther_logs/panther_audit/metadata/00007-e02f021e-4325-4115-8266-4a6628ff0848.metadata.json"},
		{DB: "panther_rule_matches", Table: "aws_cloudtrail", Location: root + "/panther_rule_matches/aws_cloudtrail/metadata/00003-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0.metadata.json"},
	}
}

func s3Lake(kind iceberg.Kind) Lake {
	l := Lake{Location: s3Root, Dir: "/var/lib/osprey/s3/sec-lake/osprey", Region: "eu-west-1", Catalog: kind, Tables: tables(s3Root)}
	if kind == iceberg.Postgres {
		l.DSN = pgDSNURL
	}
	return l
}

// REST catalogs: Polaris with an OAuth2 client credential, Lakekeeper with a bearer token,
// and Amazon S3 Tables signed with SigV4. Their secrets must never be written.
const (
	restURI    = "https://polaris.internal:8181/api/catalog"
	restSecret = "cl13nt-s3cr3t"
	restToken  = "b34r3r-t0k3n"
	tableARN   = "arn:aws:s3tables:eu-west-1:111122223333:bucket/sec-tables"
)

func restLake(auth string) Lake {
	l := s3Lake(iceberg.REST)
	l.REST = iceberg.RESTOptions{URI: restURI, Warehouse: "sec_lake"}
	switch auth {
	case "credential":
		l.REST.Credential = "osprey-client:" + restSecret
	case "token":
		l.REST.Token = restToken
	case "s3tables":
		l.REST = iceberg.RESTOptions{URI: "https://s3tables.eu-west-1.amazonaws.com/iceberg", Warehouse: tableARN, SigV4: "s3tables"}
	case "glue":
		l.REST = iceberg.RESTOptions{URI: "https://glue.eu-west-1.amazonaws.com/iceberg", Warehouse: "111122223333", SigV4: "glue"}
	}
	return l
}

func localLake(kind iceberg.Kind) Lake {
	l := Lake{Location: "/srv/osprey-data", Dir: "/srv/osprey-data", Catalog: kind, Tables: tables("/srv/osprey-data")}
	if kind == iceberg.Postgres {
		l.DSN = pgDSNURL
	}
	return l
}

func write(t *testing.T, e Engine, l Lake) string {
	t.Helper()
	var b strings.Builder
	if err := Write(&b, e, l); err != nil {
		t.Fatalf("Write(%s, %s %s): %v", e, l.Location, l.Catalog, err)
	}
	return b.String()
}

// TestEveryCombination checks, for each engine, catalog kind and place of the lake, the facts
// an engine needs: the right property names, every table with its current metadata file when
// the engine reads files rather than the catalog, and never the password.
func TestEveryCombination(t *testing.T) {
	type want struct {
		has    []string // substrings of the text
		tables bool     // every table's current metadata location appears
		cannot bool     // ErrCannot
	}
	// Properties whose names the engines' documentation gives (see each engine's file).
	pgJDBC := "jdbc:postgresql://db.internal:6432/lakecat?sslmode=require"
	cases := []struct {
		name   string
		engine Engine
		lake   Lake
		want   want
	}{
		{"athena/s3/glue", Athena, s3Lake(Glue), want{has: []string{`SELECT * FROM "panther_logs"."panther_audit" LIMIT 10;`, "region eu-west-1"}}},
		{"athena/s3/sqlite", Athena, s3Lake(iceberg.SQLite), want{tables: true, has: []string{"aws glue create-table --region 'eu-west-1'", "aws glue update-table", `"table_type":"ICEBERG"`, `"metadata_location":`, `"TableType":"EXTERNAL_TABLE"`, `"StorageDescriptor":{"Location":"s3://sec-lake/osprey/panther_logs/panther_audit"}`, "point-in-time", "aws glue create-database"}}},
		{"athena/s3/postgres", Athena, s3Lake(iceberg.Postgres), want{tables: true, has: []string{`"table_type":"ICEBERG"`, "catalog is\n# postgres"}}},
		{"athena/local", Athena, localLake(iceberg.SQLite), want{cannot: true}},
		{"athena/endpoint", Athena, func() Lake { l := s3Lake(Glue); l.Endpoint = "http://127.0.0.1:9000"; return l }(), want{cannot: true}},

		{"trino/s3/glue", Trino, s3Lake(Glue), want{has: []string{"connector.name=iceberg", "iceberg.catalog.type=glue", "hive.metastore.glue.region=eu-west-1", "fs.s3.enabled=true", "s3.region=eu-west-1", "iceberg.security=read_only"}}},
		{"trino/s3/postgres", Trino, s3Lake(iceberg.Postgres), want{has: []string{"iceberg.catalog.type=jdbc", "iceberg.jdbc-catalog.catalog-name=osprey", "iceberg.jdbc-catalog.driver-class=org.postgresql.Driver",
			"iceberg.jdbc-catalog.connection-url=" + pgJDBC + "\n", "iceberg.jdbc-catalog.connection-user=osprey\n", "iceberg.jdbc-catalog.connection-password=${ENV:OSPREY_CATALOG_PASSWORD}",
			"iceberg.jdbc-catalog.default-warehouse-dir=s3://sec-lake/osprey\n", "[pool_max_conns]", "SELECT * FROM osprey.panther_logs.panther_audit LIMIT 10;"}}},
		{"trino/s3/sqlite", Trino, s3Lake(iceberg.SQLite), want{tables: false, has: []string{"iceberg.jdbc-catalog.driver-class=org.sqlite.JDBC", "connection-url=jdbc:sqlite:/var/lib/osprey/s3/sec-lake/osprey/_osprey/catalog.db",
			"CALL iceberg.system.register_table(schema_name => 'panther_logs', table_name => 'panther_audit', table_location => 's3://sec-lake/osprey/panther_logs/panther_audit', metadata_file_name => '00007-e02f021e-4325-4115-8266-4a6628ff0848.metadata.json');",
			"iceberg.register-table-procedure.enabled=true", "point-in-time"}}},
		{"trino/local/sqlite", Trino, localLake(iceberg.SQLite), want{has: []string{"connection-url=jdbc:sqlite:/srv/osprey-data/_osprey/catalog.db", "fs.hadoop.enabled=true", "default-warehouse-dir=/srv/osprey-data\n", "sqlite-jdbc"}}},
		{"trino/local/postgres", Trino, localLake(iceberg.Postgres), want{has: []string{"connection-url=" + pgJDBC, "fs.hadoop.enabled=true"}}},
		{"trino/endpoint", Trino, func() Lake {
			l := s3Lake(iceberg.Postgres)
			l.Endpoint = "http://127.0.0.1:9000"
			l.PathStyle = true
			return l
		}(), want{has: []string{"s3.endpoint=http://127.0.0.1:9000", "s3.path-style-access=true"}}},

		{"spark/s3/glue", Spark, s3Lake(Glue), want{has: []string{"'spark.sql.catalog.osprey=org.apache.iceberg.spark.SparkCatalog'", "'spark.sql.catalog.osprey.type=glue'", "'spark.sql.catalog.osprey.warehouse=s3://sec-lake/osprey'",
			"'spark.sql.catalog.osprey.io-impl=org.apache.iceberg.aws.s3.S3FileIO'", "'spark.sql.catalog.osprey.client.region=eu-west-1'", "iceberg-aws-bundle", "spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"}}},
		{"spark/s3/postgres", Spark, s3Lake(iceberg.Postgres), want{has: []string{"'spark.sql.catalog.osprey.type=jdbc'", "'spark.sql.catalog.osprey.uri=" + pgJDBC + "'", "'spark.sql.catalog.osprey.jdbc.user=osprey'",
			`"spark.sql.catalog.osprey.jdbc.password=${OSPREY_CATALOG_PASSWORD:?`, "org.postgresql:postgresql:", "SELECT * FROM osprey.panther_logs.aws_cloudtrail LIMIT 10;"}}},
		{"spark/s3/sqlite", Spark, s3Lake(iceberg.SQLite), want{tables: true, has: []string{"'spark.sql.catalog.osprey.uri=jdbc:sqlite:/var/lib/osprey/s3/sec-lake/osprey/_osprey/catalog.db'", "org.xerial:sqlite-jdbc:",
			"CALL iceberg.system.register_table(table => 'panther_logs.panther_audit', metadata_file => 's3://sec-lake/osprey/panther_logs/panther_audit/metadata/00007-"}}},
		{"spark/local/sqlite", Spark, localLake(iceberg.SQLite), want{has: []string{"'spark.sql.catalog.osprey.uri=jdbc:sqlite:/srv/osprey-data/_osprey/catalog.db'", "'spark.sql.catalog.osprey.warehouse=/srv/osprey-data'"}}},
		{"spark/endpoint", Spark, func() Lake { l := s3Lake(Glue); l.Endpoint = "http://127.0.0.1:9000"; l.PathStyle = true; return l }(), want{has: []string{"'spark.sql.catalog.osprey.s3.endpoint=http://127.0.0.1:9000'", "'spark.sql.catalog.osprey.s3.path-style-access=true'"}}},

		{"snowflake/s3/glue", Snowflake, s3Lake(Glue), want{has: []string{"CREATE EXTERNAL VOLUME IF NOT EXISTS osprey_lake", "STORAGE_PROVIDER = 'S3'", "STORAGE_BASE_URL = 's3://sec-lake/osprey/'", "ALLOW_WRITES = FALSE;",
			"CATALOG_SOURCE = GLUE", "GLUE_REGION = 'eu-west-1'", "CATALOG_NAMESPACE = 'panther_rule_matches'", "CATALOG_TABLE_NAME = 'aws_cloudtrail'", "AUTO_REFRESH = TRUE;"}}},
		{"snowflake/s3/postgres", Snowflake, s3Lake(iceberg.Postgres), want{has: []string{"CATALOG_SOURCE = OBJECT_STORE", "TABLE_FORMAT = ICEBERG",
			"METADATA_FILE_PATH = 'panther_logs/panther_audit/metadata/00007-e02f021e-4325-4115-8266-4a6628ff0848.metadata.json';",
			"ALTER ICEBERG TABLE panther_logs.panther_audit REFRESH 'panther_logs/panther_audit/metadata/00007-", "point-in-time"}}},
		{"snowflake/local", Snowflake, localLake(iceberg.Postgres), want{cannot: true}},
		{"snowflake/endpoint", Snowflake, func() Lake { l := s3Lake(Glue); l.Endpoint = "http://127.0.0.1:9000"; return l }(), want{cannot: true}},

		{"duckdb/s3/glue", DuckDB, s3Lake(Glue), want{has: []string{"ATTACH '<AWS account id>' AS osprey (TYPE iceberg, ENDPOINT_TYPE 'glue');", "CREATE OR REPLACE SECRET osprey_lake (TYPE s3, PROVIDER credential_chain, REGION 'eu-west-1', SCOPE 's3://sec-lake/osprey');"}}},
		{"duckdb/s3/sqlite", DuckDB, s3Lake(iceberg.SQLite), want{tables: true, has: []string{"INSTALL httpfs; LOAD httpfs;", "INSTALL iceberg; LOAD iceberg;",
			"CREATE OR REPLACE VIEW panther_logs.panther_audit AS SELECT * FROM iceberg_scan('s3://sec-lake/osprey/panther_logs/panther_audit/metadata/00007-"}}},
		{"duckdb/local/postgres", DuckDB, localLake(iceberg.Postgres), want{tables: true, has: []string{"iceberg_scan('/srv/osprey-data/panther_logs/panther_audit/metadata/00007-", "osprey sql"}}},
		{"duckdb/endpoint", DuckDB, func() Lake {
			l := s3Lake(iceberg.SQLite)
			l.Endpoint, l.PathStyle = "http://127.0.0.1:9000", true
			return l
		}(), want{has: []string{"ENDPOINT '127.0.0.1:9000', USE_SSL false, URL_STYLE 'path'"}}},
	}
	restHeader := "Catalog: Iceberg REST at " + restURI + ", warehouse sec_lake, "
	cases = append(cases, []struct {
		name   string
		engine Engine
		lake   Lake
		want   want
	}{
		{"trino/rest/credential", Trino, restLake("credential"), want{has: []string{"# " + restHeader + "OAuth2 client credential", "iceberg.catalog.type=rest\n", "iceberg.rest-catalog.uri=" + restURI + "\n", "iceberg.rest-catalog.warehouse=sec_lake\n",
			"iceberg.rest-catalog.security=OAUTH2\n", "iceberg.rest-catalog.oauth2.credential=${ENV:OSPREY_REST_CREDENTIAL}\n", "iceberg.security=read_only", "fs.s3.enabled=true", "SELECT * FROM osprey.panther_logs.panther_audit LIMIT 10;"}}},
		{"trino/rest/token", Trino, restLake("token"), want{has: []string{"iceberg.rest-catalog.security=OAUTH2\n", "iceberg.rest-catalog.oauth2.token=${ENV:OSPREY_REST_TOKEN}\n"}}},
		{"trino/rest/none", Trino, restLake(""), want{has: []string{restHeader + "no authentication", "iceberg.rest-catalog.uri=" + restURI + "\n"}}},
		{"trino/rest/s3tables", Trino, restLake("s3tables"), want{has: []string{"iceberg.rest-catalog.uri=https://s3tables.eu-west-1.amazonaws.com/iceberg\n", "iceberg.rest-catalog.warehouse=" + tableARN + "\n",
			"iceberg.rest-catalog.security=SIGV4\n", "iceberg.rest-catalog.signing-name=s3tables\n", "iceberg.rest-catalog.view-endpoints-enabled=false\n", "s3.region=eu-west-1"}}},

		{"spark/rest/credential", Spark, restLake("credential"), want{has: []string{"'spark.sql.catalog.osprey.type=rest'", "'spark.sql.catalog.osprey.uri=" + restURI + "'", "'spark.sql.catalog.osprey.warehouse=sec_lake'",
			`"spark.sql.catalog.osprey.credential=${OSPREY_REST_CREDENTIAL:?`, "'spark.sql.catalog.osprey.io-impl=org.apache.iceberg.aws.s3.S3FileIO'", "iceberg-aws-bundle", "SELECT * FROM osprey.panther_logs.aws_cloudtrail LIMIT 10;"}}},
		{"spark/rest/token", Spark, restLake("token"), want{has: []string{`"spark.sql.catalog.osprey.token=${OSPREY_REST_TOKEN:?`}}},
		{"spark/rest/s3tables", Spark, restLake("s3tables"), want{has: []string{"'spark.sql.catalog.osprey.warehouse=" + tableARN + "'", "'spark.sql.catalog.osprey.rest.sigv4-enabled=true'",
			"'spark.sql.catalog.osprey.rest.signing-name=s3tables'", "'spark.sql.catalog.osprey.rest.signing-region=eu-west-1'"}}},

		{"duckdb/rest/credential", DuckDB, restLake("credential"), want{has: []string{"INSTALL iceberg; LOAD iceberg;", "CREATE OR REPLACE SECRET osprey_lake (TYPE s3",
			"CREATE OR REPLACE SECRET osprey_catalog (TYPE iceberg, CLIENT_ID '<client_id>', CLIENT_SECRET '<client_secret>', OAUTH2_SERVER_URI '" + restURI + "/v1/oauth/tokens');",
			"ATTACH 'sec_lake' AS osprey (TYPE iceberg, SECRET osprey_catalog, ENDPOINT '" + restURI + "');", "SELECT * FROM osprey.panther_rule_matches.aws_cloudtrail LIMIT 10;"}}},
		{"duckdb/rest/token", DuckDB, restLake("token"), want{has: []string{"CREATE OR REPLACE SECRET osprey_catalog (TYPE iceberg, TOKEN '<bearer token>');", "ATTACH 'sec_lake' AS osprey (TYPE iceberg, SECRET osprey_catalog, ENDPOINT '" + restURI + "');"}}},
		{"duckdb/rest/none", DuckDB, restLake(""), want{has: []string{"ATTACH 'sec_lake' AS osprey (TYPE iceberg, ENDPOINT '" + restURI + "', AUTHORIZATION_TYPE 'none');"}}},
		{"duckdb/rest/s3tables", DuckDB, restLake("s3tables"), want{has: []string{"ATTACH '" + tableARN + "' AS osprey (TYPE iceberg, ENDPOINT_TYPE 's3_tables');"}}},
		{"duckdb/rest/glue", DuckDB, restLake("glue"), want{has: []string{"ATTACH '111122223333' AS osprey (TYPE iceberg, ENDPOINT_TYPE 'glue');"}}},

		{"snowflake/rest/credential", Snowflake, restLake("credential"), want{has: []string{"CREATE EXTERNAL VOLUME IF NOT EXISTS osprey_lake", "CATALOG_SOURCE = ICEBERG_REST", "TABLE_FORMAT = ICEBERG",
			"REST_CONFIG = (\n    CATALOG_URI = '" + restURI + "'\n    CATALOG_NAME = 'sec_lake'\n  )", "REST_AUTHENTICATION = (\n    TYPE = OAUTH\n    OAUTH_TOKEN_URI = '" + restURI + "/v1/oauth/tokens'",
			"OAUTH_CLIENT_ID = '<client_id>'", "OAUTH_CLIENT_SECRET = '<client_secret>'", "OAUTH_ALLOWED_SCOPES = (",
			"EXTERNAL_VOLUME = 'osprey_lake'\n  CATALOG = 'osprey_rest'\n  CATALOG_NAMESPACE = 'panther_logs'\n  CATALOG_TABLE_NAME = 'panther_audit'\n  AUTO_REFRESH = TRUE;"}}},
		{"snowflake/rest/token", Snowflake, restLake("token"), want{has: []string{"TYPE = BEARER\n    BEARER_TOKEN = '<bearer token>'"}}},
		{"snowflake/rest/s3tables", Snowflake, restLake("s3tables"), want{has: []string{"CATALOG_URI = 'https://glue.eu-west-1.amazonaws.com/iceberg'", "CATALOG_API_TYPE = AWS_GLUE",
			"CATALOG_NAME = '<AWS account id>:s3tablescatalog/sec-tables'", "ACCESS_DELEGATION_MODE = VENDED_CREDENTIALS", "TYPE = SIGV4", "SIGV4_SIGNING_REGION = 'eu-west-1'",
			"CREATE ICEBERG TABLE IF NOT EXISTS panther_logs.panther_audit\n  CATALOG = 'osprey_rest'"}}},
		{"snowflake/rest/local", Snowflake, func() Lake { l := restLake("token"); l.Endpoint = "http://127.0.0.1:9000"; return l }(), want{cannot: true}},

		{"athena/rest/credential", Athena, restLake("credential"), want{tables: true, has: []string{"catalog is\n# rest", `"table_type":"ICEBERG"`, "aws glue create-table --region 'eu-west-1'", "point-in-time"}}},
		{"athena/rest/s3tables", Athena, restLake("s3tables"), want{has: []string{"AWS analytics services integration", "s3tablescatalog/sec-tables",
			`SELECT * FROM "s3tablescatalog/sec-tables"."panther_logs"."panther_audit" LIMIT 10;`}}},
		{"athena/rest/glue", Athena, restLake("glue"), want{has: []string{`SELECT * FROM "panther_logs"."panther_audit" LIMIT 10;`, "signed with AWS SigV4 for glue"}}},
	}...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			err := Write(&b, c.engine, c.lake)
			if c.want.cannot {
				if !errors.Is(err, ErrCannot) {
					t.Fatalf("err = %v, want ErrCannot", err)
				}
				if b.Len() != 0 {
					t.Errorf("wrote %q with ErrCannot", b.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := b.String()
			for _, s := range c.want.has {
				if !strings.Contains(got, s) {
					t.Errorf("text lacks %q:\n%s", s, got)
				}
			}
			for _, p := range c.lake.Tables {
				if !strings.Contains(got, p.DB+"."+p.Table) && !strings.Contains(got, `"`+p.DB+`"."`+p.Table+`"`) && !strings.Contains(got, `"Name":"`+p.Table+`"`) {
					t.Errorf("text does not name the table %s.%s", p.DB, p.Table)
				}
				if c.want.tables && !strings.Contains(got, p.Location) && !strings.Contains(got, strings.TrimPrefix(p.Location, c.lake.Location+"/")) {
					t.Errorf("text lacks %s.%s's current metadata file %s", p.DB, p.Table, p.Location)
				}
			}
			for _, secret := range []string{password, restSecret, restToken} {
				if strings.Contains(got, secret) {
					t.Errorf("text holds the catalog's secret %q:\n%s", secret, got)
				}
			}
		})
	}
}

// TestGolden keeps one whole text per engine, to read in review and diff when it changes
// (go test -run TestGolden -update rewrites them).
func TestGolden(t *testing.T) {
	for _, c := range []struct {
		file   string
		engine Engine
		lake   Lake
	}{
		{"athena_s3_postgres.golden", Athena, s3Lake(iceberg.Postgres)},
		{"trino_s3_postgres.golden", Trino, s3Lake(iceberg.Postgres)},
		{"spark_local_sqlite.golden", Spark, localLake(iceberg.SQLite)},
		{"snowflake_s3_glue.golden", Snowflake, s3Lake(Glue)},
		{"duckdb_s3_sqlite.golden", DuckDB, s3Lake(iceberg.SQLite)},
		{"trino_s3_rest.golden", Trino, restLake("credential")},
		{"snowflake_s3_rest.golden", Snowflake, restLake("credential")},
	} {
		t.Run(c.file, func(t *testing.T) {
			got := write(t, c.engine, c.lake)
			path := filepath.Join("testdata", c.file)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s changed (go test -run TestGolden -update to accept):\n%s", path, got)
			}
		})
	}
}

func TestParseEngine(t *testing.T) {
	for _, e := range Engines {
		if got, err := ParseEngine(strings.ToUpper(string(e))); err != nil || got != e {
			t.Errorf("ParseEngine(%q) = %q, %v", strings.ToUpper(string(e)), got, err)
		}
	}
	_, err := ParseEngine("bigquery")
	if err == nil || !strings.Contains(err.Error(), `unknown engine "bigquery" (want one of athena, trino, spark, snowflake, duckdb)`) {
		t.Errorf("ParseEngine(bigquery) = %v", err)
	}
	if _, err := ParseEngine(""); err == nil || !strings.Contains(err.Error(), "--engine is required") {
		t.Errorf("ParseEngine(\"\") = %v", err)
	}
}

func TestParseDSN(t *testing.T) {
	f := func(dsn, wantURL, wantUser string) {
		t.Helper()
		p, err := parseDSN(dsn)
		if err != nil {
			t.Fatalf("parseDSN(%q): %v", dsn, err)
		}
		if got := p.jdbcURL(); got != wantURL {
			t.Errorf("parseDSN(%q).jdbcURL() = %q, want %q", dsn, got, wantURL)
		}
		if p.user != wantUser {
			t.Errorf("parseDSN(%q).user = %q, want %q", dsn, p.user, wantUser)
		}
	}
	f("postgres://osprey:pw@db:5432/lake", "jdbc:postgresql://db:5432/lake", "osprey")
	f("postgresql://osprey@db/lake", "jdbc:postgresql://db:5432/lake", "osprey")
	f("postgres://u:p%40ss@[::1]:6543/x?sslmode=verify-full&sslrootcert=/etc/ca.pem", "jdbc:postgresql://[::1]:6543/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem", "u")
	f("postgres://alice@h", "jdbc:postgresql://h:5432/alice", "alice") // libpq: the database defaults to the user's name
	f("host=10.0.0.5 port=5433 dbname=cat user=osprey password='x y' sslmode=disable", "jdbc:postgresql://10.0.0.5:5433/cat?sslmode=disable", "osprey")

	for _, bad := range []string{"postgres://:pw@h", "host=h nonsense", "postgres://u:p@h:port/db"} {
		_, err := parseDSN(bad)
		if err == nil {
			t.Errorf("parseDSN(%q) = nil error", bad)
		} else if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), ":p@") {
			t.Errorf("parseDSN(%q)'s error shows the password: %v", bad, err)
		}
	}
}

func TestUnknownCatalog(t *testing.T) {
	l := s3Lake("hive")
	if err := Write(&strings.Builder{}, Trino, l); err == nil || !strings.Contains(err.Error(), `unknown catalog "hive" (want sqlite, postgres, glue or rest)`) {
		t.Errorf("Write with catalog hive = %v", err)
	}
	if err := Write(&strings.Builder{}, Trino, s3Lake(iceberg.REST)); err == nil || !strings.Contains(err.Error(), "no uri") {
		t.Errorf("Write of a REST catalog without a uri = %v", err)
	}
	if err := Write(&strings.Builder{}, Spark, func() Lake { l := restLake("token"); l.Location = "/srv/osprey-data"; return l }()); !errors.Is(err, ErrCannot) {
		t.Errorf("Write of a local lake with a REST catalog = %v, want ErrCannot", err)
	}
	if err := Write(&strings.Builder{}, Trino, localLake(Glue)); !errors.Is(err, ErrCannot) {
		t.Errorf("Write of a local lake with a Glue catalog = %v, want ErrCannot", err)
	}
}
