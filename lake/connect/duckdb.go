package connect

import (
	"fmt"
	"strings"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// duckdb writes DuckDB SQL for its iceberg extension: iceberg_scan of a table's metadata file
// (DuckDB guide "S3 Iceberg Import": a table's directory needs a version-hint.text, which
// osprey does not write, so the metadata file is named), S3 secrets (CREATE SECRET with TYPE s3,
// PROVIDER credential_chain, REGION, ENDPOINT host:port, URL_STYLE 'path', USE_SSL, SCOPE:
// DuckDB's httpfs S3 API page) and, for Glue, ATTACH ... (TYPE iceberg, ENDPOINT_TYPE 'glue')
// (DuckDB's iceberg "Amazon SageMaker Lakehouse (AWS Glue)" page); a REST catalog: ATTACH
// 'warehouse' AS ... (TYPE iceberg, ENDPOINT, SECRET, AUTHORIZATION_TYPE 'none' | 'sigv4';
// ENDPOINT_TYPE 's3_tables' | 'glue') with CREATE SECRET (TYPE iceberg, CLIENT_ID,
// CLIENT_SECRET, OAUTH2_SERVER_URI | TOKEN) (DuckDB's "Iceberg REST Catalogs" page).
func duckdb(d *doc, l Lake, pg pgDSN) error {
	d.c = "--"
	describe(d, l, pg)
	exts := []string{"iceberg"}
	if l.remote() {
		exts = []string{"httpfs", "aws", "iceberg"}
	}
	if !l.remote() {
		d.say("osprey sql is DuckDB already reading this lake, with Panther's macros. For your own DuckDB")
		d.say("on this machine (the tables' files are local paths), with extensions it can download:")
	} else {
		d.say("For a DuckDB that can download extensions (httpfs, aws, iceberg). S3 credentials come from")
		d.say("the default AWS chain (environment, profile, instance role).")
	}
	d.blank()
	for _, e := range exts {
		d.code(fmt.Sprintf("INSTALL %s; LOAD %s;", e, e))
	}
	if l.remote() {
		d.code(duckdbSecret(l))
	}
	d.blank()
	if l.kind() == iceberg.REST {
		duckdbREST(d, l)
		return nil
	}
	if l.kind() == Glue {
		d.say("DuckDB reads the Glue catalog live through Glue's Iceberg REST endpoint (experimental in DuckDB):")
		d.code("ATTACH '<AWS account id>' AS osprey (TYPE iceberg, ENDPOINT_TYPE 'glue');")
		d.blank()
		d.say("Then, for example:")
		for _, t := range l.Tables {
			d.say("  SELECT * FROM osprey.%s.%s LIMIT 10;", t.DB, t.Table)
		}
		return nil
	}
	d.say("DuckDB cannot read a %s catalog: each view below reads a table's current metadata file.", l.kind())
	pointInTime(d, "use the glue catalog, which DuckDB attaches")
	d.blank()
	d.schemas(l)
	for _, t := range l.Tables {
		d.code(fmt.Sprintf("CREATE OR REPLACE VIEW %s.%s AS SELECT * FROM iceberg_scan(%s);", t.DB, t.Table, sqlString(t.Location)))
	}
	d.blank()
	d.say("Then, for example:")
	for _, t := range l.Tables {
		d.say("  SELECT * FROM %s.%s LIMIT 10;", t.DB, t.Table)
	}
	return nil
}

// duckdbSecret is an S3 secret for the lake's bucket.
func duckdbSecret(l Lake) string {
	opts := []string{"TYPE s3", "PROVIDER credential_chain"}
	if l.Region != "" {
		opts = append(opts, "REGION "+sqlString(l.Region))
	}
	if l.Endpoint != "" {
		host, tls := l.Endpoint, true
		if rest, ok := strings.CutPrefix(host, "http://"); ok {
			host, tls = rest, false
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "https://"), "/")
		opts = append(opts, "ENDPOINT "+sqlString(host))
		if !tls {
			opts = append(opts, "USE_SSL false")
		}
	}
	if l.PathStyle {
		opts = append(opts, "URL_STYLE 'path'")
	}
	opts = append(opts, "SCOPE "+sqlString(l.Location))
	return "CREATE OR REPLACE SECRET osprey_lake (" + strings.Join(opts, ", ") + ");"
}

// duckdbREST attaches a REST catalog, which DuckDB reads live.
func duckdbREST(d *doc, l Lake) {
	d.say("DuckDB reads the REST catalog live (ATTACH of an Iceberg REST catalog):")
	at := func(opts ...string) {
		d.code(fmt.Sprintf("ATTACH %s AS osprey (%s);", sqlString(l.REST.Warehouse), strings.Join(append([]string{"TYPE iceberg"}, opts...), ", ")))
	}
	endpoint := "ENDPOINT " + sqlString(l.REST.URI)
	switch {
	case l.s3Tables():
		d.say("Amazon S3 Tables, signed with the S3 secret's credentials.")
		at("ENDPOINT_TYPE 's3_tables'")
	case l.glueREST():
		d.say("AWS Glue's Iceberg REST endpoint, signed with the S3 secret's credentials.")
		at("ENDPOINT_TYPE 'glue'")
	case l.restAuth() == authSigV4:
		d.say("Signed with AWS SigV4 with the S3 secret's credentials.")
		at(endpoint, "AUTHORIZATION_TYPE 'sigv4'")
	case l.restAuth() == authCredential:
		d.say("Replace the placeholders with the client id and secret of $%s (client_id:client_secret);", CredentialVar)
		d.say("they are not printed here.")
		d.code("CREATE OR REPLACE SECRET osprey_catalog (TYPE iceberg, CLIENT_ID '<client_id>', CLIENT_SECRET '<client_secret>', OAUTH2_SERVER_URI " + sqlString(l.oauthTokenURI()) + ");")
		at("SECRET osprey_catalog", endpoint)
	case l.restAuth() == authToken:
		d.say("Replace the placeholder with the bearer token of $%s; it is not printed here.", TokenVar)
		d.code("CREATE OR REPLACE SECRET osprey_catalog (TYPE iceberg, TOKEN '<bearer token>');")
		at("SECRET osprey_catalog", endpoint)
	default:
		at(endpoint, "AUTHORIZATION_TYPE 'none'")
	}
	d.blank()
	d.say("Then, for example:")
	for _, t := range l.Tables {
		d.say("  SELECT * FROM osprey.%s.%s LIMIT 10;", t.DB, t.Table)
	}
}
