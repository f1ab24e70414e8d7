package connect

import (
	"fmt"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// trino writes a catalog properties file of Trino's Iceberg connector. Property names are
// those of Trino's documentation (docs/src/main/sphinx/object-storage/metastores.md: JDBC
// catalog iceberg.jdbc-catalog.{driver-class,connection-url,connection-user,
// connection-password,catalog-name,default-warehouse-dir}, Glue catalog
// hive.metastore.glue.region; file-system-s3.md: fs.s3.enabled, s3.region, s3.endpoint,
// s3.path-style-access; connector/iceberg.md: iceberg.security, system.register_table with
// metadata_file_name and iceberg.register-table-procedure.enabled). A location without a
// scheme, as a local lake's are, goes to Trino's Hadoop file system (fs.hadoop.enabled: Trino's
// FileSystemModule falls back to it when a location has no scheme). ${ENV:...} is Trino's
// secret substitution in properties files (docs security/secrets.md). A REST catalog:
// iceberg.catalog.type=rest with iceberg.rest-catalog.{uri,warehouse,security (OAUTH2, SIGV4),
// oauth2.credential,oauth2.token,signing-name,view-endpoints-enabled} (metastores.md, and
// IcebergRestCatalogSigV4Config; AWS's S3 Tables guide for Trino sets view-endpoints-enabled=false).
func trino(d *doc, l Lake, pg pgDSN) error {
	d.c = "#"
	describe(d, l, pg)
	props := []string{"connector.name=iceberg"}
	var notes []string
	switch l.kind() {
	case Glue:
		d.say("Trino reads the Glue catalog live: each query sees the tables' current snapshots.")
		props = append(props, "iceberg.catalog.type=glue")
		if l.Region != "" {
			props = append(props, "hive.metastore.glue.region="+l.Region)
		}
	case iceberg.REST:
		d.say("Trino reads the REST catalog live: each query sees the tables' current snapshots.")
		props = append(props, "iceberg.catalog.type=rest", "iceberg.rest-catalog.uri="+l.REST.URI)
		if l.REST.Warehouse != "" {
			props = append(props, "iceberg.rest-catalog.warehouse="+l.REST.Warehouse)
		}
		switch l.restAuth() {
		case authCredential:
			props = append(props, "iceberg.rest-catalog.security=OAUTH2", "iceberg.rest-catalog.oauth2.credential=${ENV:"+CredentialVar+"}")
			notes = append(notes, fmt.Sprintf("Set %s in the environment of every Trino node to the catalog's OAuth2 client_id:client_secret.", CredentialVar),
				"Trino exchanges it at "+l.oauthTokenURI()+"; a server whose token endpoint is elsewhere needs iceberg.rest-catalog.oauth2.server-uri.")
		case authToken:
			props = append(props, "iceberg.rest-catalog.security=OAUTH2", "iceberg.rest-catalog.oauth2.token=${ENV:"+TokenVar+"}")
			notes = append(notes, fmt.Sprintf("Set %s in the environment of every Trino node to the catalog's bearer token.", TokenVar))
		case authSigV4:
			props = append(props, "iceberg.rest-catalog.security=SIGV4", "iceberg.rest-catalog.signing-name="+l.REST.SigV4)
			if l.s3Tables() {
				props = append(props, "# S3 Tables serves no view endpoints", "iceberg.rest-catalog.view-endpoints-enabled=false")
			}
			notes = append(notes, "Requests to the catalog are signed with each node's AWS credentials (the default chain), in s3.region.",
				"Trino releases without iceberg.rest-catalog.security=SIGV4 take iceberg.rest-catalog.sigv4-enabled=true instead.")
		}
	case iceberg.Postgres:
		d.say("Trino reads the PostgreSQL catalog live (Iceberg's JDBC catalog, catalog name %s): each", CatalogName)
		d.say("query sees the tables' current snapshots.")
		props = append(props,
			"iceberg.catalog.type=jdbc",
			"iceberg.jdbc-catalog.catalog-name="+CatalogName,
			"iceberg.jdbc-catalog.driver-class=org.postgresql.Driver",
			"iceberg.jdbc-catalog.connection-url="+pg.jdbcURL(),
			"iceberg.jdbc-catalog.connection-user="+pg.userOr("<user>"),
			"iceberg.jdbc-catalog.connection-password=${ENV:"+PasswordVar+"}",
			"iceberg.jdbc-catalog.default-warehouse-dir="+l.Location)
		notes = append(notes, fmt.Sprintf("Set %s in the environment of every Trino node to the catalog database's password.", PasswordVar))
		if len(pg.dropped) > 0 {
			notes = append(notes, fmt.Sprintf("The DSN's parameters %v have no JDBC equivalent here: add them to connection-url if needed.", pg.dropped))
		}
	case iceberg.SQLite:
		d.say("The embedded SQLite catalog is a file on this machine, %s: only a Trino", sqliteFile(l))
		d.say("whose every node reads that file can use it (Iceberg's JDBC catalog over SQLite, catalog name")
		d.say("%s), and it then reads the tables live. For Trino elsewhere, use a PostgreSQL catalog", CatalogName)
		d.say("(--catalog postgres://...) or Glue.")
		props = append(props,
			"iceberg.catalog.type=jdbc",
			"iceberg.jdbc-catalog.catalog-name="+CatalogName,
			"iceberg.jdbc-catalog.driver-class=org.sqlite.JDBC",
			"iceberg.jdbc-catalog.connection-url=jdbc:sqlite:"+sqliteFile(l),
			"iceberg.jdbc-catalog.default-warehouse-dir="+l.Location)
		notes = append(notes, "Trino ships PostgreSQL's JDBC driver only: put the sqlite-jdbc jar (org.xerial:sqlite-jdbc) in plugin/iceberg/ of every node.")
	}
	props = append(props, "# osprey owns these tables: read them, do not write them", "iceberg.security=read_only")
	if l.remote() {
		props = append(props, trinoS3(l)...)
		notes = append(notes, "S3 credentials come from each node's default AWS chain (environment, instance role), or set s3.aws-access-key and s3.aws-secret-key.")
	} else {
		props = append(props, "# the tables' locations are local paths: Trino's Hadoop file system reads them", "fs.hadoop.enabled=true")
		notes = append(notes, fmt.Sprintf("The lake is a local directory: every Trino node must read %s at that path.", l.Location))
	}
	d.blank()
	d.say("1. Write etc/catalog/osprey.properties on every Trino node (coordinator and workers):")
	d.blank()
	d.code(props...)
	d.blank()
	for _, n := range notes {
		d.say("%s", n)
	}
	if l.remote() {
		d.say("Trino releases before the rename call fs.s3.enabled fs.native-s3.enabled.")
	}
	d.blank()
	d.say("2. Restart Trino, then query, for example:")
	d.blank()
	for _, t := range l.Tables {
		d.say("  SELECT * FROM osprey.%s.%s LIMIT 10;", t.DB, t.Table)
	}
	if l.kind() == iceberg.SQLite && l.remote() {
		d.blank()
		d.say("Trino elsewhere can register the tables' current metadata files in an Iceberg catalog of its")
		d.say("own (here named iceberg, with iceberg.register-table-procedure.enabled=true):")
		d.blank()
		pointInTime(d, "use a PostgreSQL or Glue catalog, as above")
		d.blank()
		for _, db := range l.databases() {
			d.say("  CREATE SCHEMA IF NOT EXISTS iceberg.%s;", db)
		}
		for _, t := range l.Tables {
			d.say("  CALL iceberg.system.register_table(schema_name => %s, table_name => %s, table_location => %s, metadata_file_name => %s);",
				sqlString(t.DB), sqlString(t.Table), sqlString(tableLocation(t)), sqlString(metadataFile(t)))
		}
		d.say("To refresh, first: CALL iceberg.system.unregister_table(schema_name => ..., table_name => ...);")
	}
	return nil
}

func trinoS3(l Lake) []string {
	p := []string{"fs.s3.enabled=true", "s3.region=" + regionOr(l, "<region>")}
	if l.Endpoint != "" {
		p = append(p, "s3.endpoint="+l.Endpoint)
	}
	if l.PathStyle {
		p = append(p, "s3.path-style-access=true")
	}
	return p
}
