package connect

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// snowflake writes Snowflake SQL: an external volume on the lake's bucket (CREATE EXTERNAL
// VOLUME: STORAGE_PROVIDER 'S3', STORAGE_BASE_URL, STORAGE_AWS_ROLE_ARN, ALLOW_WRITES), a
// catalog integration (CREATE CATALOG INTEGRATION: CATALOG_SOURCE = GLUE with
// GLUE_AWS_ROLE_ARN, GLUE_CATALOG_ID, GLUE_REGION; or CATALOG_SOURCE = OBJECT_STORE) and a
// CREATE ICEBERG TABLE per table (AWS Glue: CATALOG_TABLE_NAME, CATALOG_NAMESPACE,
// AUTO_REFRESH; files in object storage: METADATA_FILE_PATH relative to the volume's base
// URL, refreshed by ALTER ICEBERG TABLE ... REFRESH '<relative path>'), all as Snowflake's SQL
// reference (docs.snowflake.com/en/sql-reference/sql/...) spells them. A REST catalog: CREATE
// CATALOG INTEGRATION (Apache Iceberg REST): CATALOG_SOURCE = ICEBERG_REST, REST_CONFIG =
// (CATALOG_URI, CATALOG_NAME, CATALOG_API_TYPE, ACCESS_DELEGATION_MODE), REST_AUTHENTICATION =
// (TYPE = OAUTH with OAUTH_TOKEN_URI, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET,
// OAUTH_ALLOWED_SCOPES | TYPE = BEARER with BEARER_TOKEN | TYPE = SIGV4 with SIGV4_IAM_ROLE,
// SIGV4_SIGNING_REGION); S3 Tables through AWS Glue's Iceberg REST endpoint (CATALOG_API_TYPE =
// AWS_GLUE, CATALOG_NAME = 'ACCOUNT:s3tablescatalog/BUCKET') with vended credentials.
func snowflake(d *doc, l Lake, pg pgDSN) error {
	switch {
	case !l.remote():
		return fmt.Errorf("%w: Snowflake reads Iceberg tables in cloud storage, and this lake is in a local directory (%s). Move the lake to S3 (--lake s3://bucket/prefix) with the glue catalog, then run this again", ErrCannot, l.Location)
	case !l.amazonS3():
		return fmt.Errorf("%w: this lake is in an S3-compatible store at %s, which Snowflake reaches only through an S3COMPAT external volume on an endpoint it can reach over the internet (not something osprey has tried). Use Amazon S3, or --engine trino, spark or duckdb", ErrCannot, l.Endpoint)
	}
	d.c = "--"
	describe(d, l, pg)
	d.say("Run as a role allowed to create external volumes, integrations and Iceberg tables, in the")
	d.say("database that is to hold the tables. Replace the <...> placeholders first.")
	d.blank()
	vended := l.kind() == iceberg.REST && (l.s3Tables() || l.glueREST())
	if !vended {
		d.say("1. An external volume on the lake's bucket, read only. Then DESC EXTERNAL VOLUME osprey_lake gives")
		d.say("the STORAGE_AWS_IAM_USER_ARN and STORAGE_AWS_EXTERNAL_ID to put in the role's trust policy; the")
		d.say("role needs s3:GetObject, s3:GetObjectVersion and s3:ListBucket on the lake's bucket and prefix.")
		d.code("CREATE EXTERNAL VOLUME IF NOT EXISTS osprey_lake",
			"  STORAGE_LOCATIONS = ((",
			"    NAME = 'osprey-lake'",
			"    STORAGE_PROVIDER = 'S3'",
			"    STORAGE_BASE_URL = "+sqlString(l.Location+"/"),
			"    STORAGE_AWS_ROLE_ARN = '<arn:aws:iam::ACCOUNT:role/ROLE Snowflake assumes to read the bucket>'",
			"  ))",
			"  ALLOW_WRITES = FALSE;")
		d.blank()
	}
	if l.kind() == iceberg.REST {
		snowflakeREST(d, l, vended)
	} else if l.kind() == Glue {
		d.say("2. A catalog integration with the Glue Data Catalog, which osprey keeps current: with")
		d.say("AUTO_REFRESH, Snowflake follows each table's new snapshots.")
		d.code("CREATE CATALOG INTEGRATION IF NOT EXISTS osprey_glue",
			"  CATALOG_SOURCE = GLUE",
			"  TABLE_FORMAT = ICEBERG",
			"  GLUE_AWS_ROLE_ARN = '<arn:aws:iam::ACCOUNT:role/ROLE Snowflake assumes to read Glue>'",
			"  GLUE_CATALOG_ID = '<AWS account id>'",
			"  GLUE_REGION = "+sqlString(regionOr(l, "<region>")),
			"  ENABLED = TRUE;")
		d.blank()
		d.say("3. The tables:")
		d.schemas(l)
		for _, t := range l.Tables {
			d.code(fmt.Sprintf("CREATE ICEBERG TABLE IF NOT EXISTS %s.%s", t.DB, t.Table),
				"  EXTERNAL_VOLUME = 'osprey_lake'",
				"  CATALOG = 'osprey_glue'",
				"  CATALOG_NAMESPACE = "+sqlString(t.DB),
				"  CATALOG_TABLE_NAME = "+sqlString(t.Table),
				"  AUTO_REFRESH = TRUE;")
		}
	} else {
		d.say("2. Snowflake cannot read a %s catalog: it reads each table's metadata file from the bucket", l.kind())
		d.say("(a catalog integration for files in object storage).")
		pointInTime(d, "use the glue catalog (catalog: type glue in osprey.yml), which Snowflake follows with AUTO_REFRESH")
		d.say("This script creates each table if it does not exist and points it at its current file.")
		d.code("CREATE CATALOG INTEGRATION IF NOT EXISTS osprey_files",
			"  CATALOG_SOURCE = OBJECT_STORE",
			"  TABLE_FORMAT = ICEBERG",
			"  ENABLED = TRUE;")
		d.blank()
		d.say("3. The tables:")
		d.schemas(l)
		for _, t := range l.Tables {
			rel := sqlString(strings.TrimPrefix(t.Location, l.Location+"/"))
			d.code(fmt.Sprintf("CREATE ICEBERG TABLE IF NOT EXISTS %s.%s", t.DB, t.Table),
				"  EXTERNAL_VOLUME = 'osprey_lake'",
				"  CATALOG = 'osprey_files'",
				"  METADATA_FILE_PATH = "+rel+";",
				fmt.Sprintf("ALTER ICEBERG TABLE %s.%s REFRESH %s;", t.DB, t.Table, rel))
		}
	}
	d.blank()
	d.say("Then, for example:")
	for _, t := range l.Tables {
		d.say("  SELECT * FROM %s.%s LIMIT 10;", t.DB, t.Table)
	}
	return nil
}

// snowflakeREST writes steps 2 and 3 for a REST catalog, which Snowflake follows with
// AUTO_REFRESH.
func snowflakeREST(d *doc, l Lake, vended bool) {
	cfg := []string{"    CATALOG_URI = " + sqlString(l.REST.URI)}
	auth := []string{}
	switch {
	case l.s3Tables():
		d.say("1. Snowflake reads Amazon S3 Tables through AWS Glue's Iceberg REST endpoint, once the table")
		d.say("bucket is integrated with the AWS analytics services (Lake Formation's s3tablescatalog), with")
		d.say("credentials Lake Formation vends: no external volume.")
		d.blank()
		cfg = []string{"    CATALOG_URI = " + sqlString("https://glue."+regionOr(l, "<region>")+".amazonaws.com/iceberg"),
			"    CATALOG_API_TYPE = AWS_GLUE",
			"    CATALOG_NAME = " + sqlString("<AWS account id>:s3tablescatalog/"+l.tableBucket()),
			"    ACCESS_DELEGATION_MODE = VENDED_CREDENTIALS"}
	case l.glueREST():
		d.say("1. Snowflake reads AWS Glue's Iceberg REST endpoint with credentials Lake Formation vends: no")
		d.say("external volume.")
		d.blank()
		cfg = append(cfg, "    CATALOG_API_TYPE = AWS_GLUE", "    CATALOG_NAME = "+sqlString(cmp.Or(l.REST.Warehouse, "<AWS account id>")),
			"    ACCESS_DELEGATION_MODE = VENDED_CREDENTIALS")
	case l.REST.Warehouse != "":
		cfg = append(cfg, "    CATALOG_NAME = "+sqlString(l.REST.Warehouse))
	}
	switch l.restAuth() {
	case authSigV4:
		auth = []string{"    TYPE = SIGV4",
			"    SIGV4_IAM_ROLE = '<arn:aws:iam::ACCOUNT:role/ROLE Snowflake assumes to sign catalog requests>'",
			"    SIGV4_SIGNING_REGION = " + sqlString(regionOr(l, "<region>"))}
	case authCredential:
		auth = []string{"    TYPE = OAUTH",
			"    OAUTH_TOKEN_URI = " + sqlString(l.oauthTokenURI()),
			"    OAUTH_CLIENT_ID = '<client_id>'",
			"    OAUTH_CLIENT_SECRET = '<client_secret>'",
			"    OAUTH_ALLOWED_SCOPES = ('<scope, such as PRINCIPAL_ROLE:ALL for Polaris>')"}
	case authToken:
		auth = []string{"    TYPE = BEARER", "    BEARER_TOKEN = '<bearer token>'"}
	}
	d.say("2. A catalog integration with the REST catalog, which osprey keeps current: with AUTO_REFRESH,")
	d.say("Snowflake follows each table's new snapshots.")
	switch l.restAuth() {
	case authCredential:
		d.say("Put the client id and secret of $%s (client_id:client_secret) in place of the placeholders;", CredentialVar)
		d.say("they are not printed here.")
	case authToken:
		d.say("Put the bearer token of $%s in place of the placeholder; it is not printed here.", TokenVar)
	case authSigV4:
		d.say("DESC CATALOG INTEGRATION osprey_rest then gives the user ARN and external id for the role's trust policy.")
	}
	lines := []string{"CREATE CATALOG INTEGRATION IF NOT EXISTS osprey_rest",
		"  CATALOG_SOURCE = ICEBERG_REST",
		"  TABLE_FORMAT = ICEBERG",
		"  REST_CONFIG = ("}
	lines = append(lines, cfg...)
	lines = append(lines, "  )")
	if len(auth) > 0 {
		lines = append(lines, "  REST_AUTHENTICATION = (")
		lines = append(lines, auth...)
		lines = append(lines, "  )")
	}
	lines = append(lines, "  ENABLED = TRUE;")
	d.code(lines...)
	d.blank()
	d.say("3. The tables:")
	d.schemas(l)
	for _, t := range l.Tables {
		tl := []string{fmt.Sprintf("CREATE ICEBERG TABLE IF NOT EXISTS %s.%s", t.DB, t.Table)}
		if !vended {
			tl = append(tl, "  EXTERNAL_VOLUME = 'osprey_lake'")
		}
		tl = append(tl, "  CATALOG = 'osprey_rest'",
			"  CATALOG_NAMESPACE = "+sqlString(t.DB),
			"  CATALOG_TABLE_NAME = "+sqlString(t.Table),
			"  AUTO_REFRESH = TRUE;")
		d.code(tl...)
	}
}
