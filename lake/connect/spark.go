package connect

import (
	"strings"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// Versions the Spark command names; the user may change them to match their Spark.
const (
	icebergVersion  = "1.10.1"
	sparkScala      = "3.5_2.12"
	pgJDBCVersion   = "42.7.5"
	sqliteJDBCVer   = "3.46.1.3"
	sparkRuntimePkg = "org.apache.iceberg:iceberg-spark-runtime-${SPARK_SCALA}:${ICEBERG_VERSION}"
	awsBundlePkg    = "org.apache.iceberg:iceberg-aws-bundle:${ICEBERG_VERSION}"
)

// spark writes a spark-sql command with an Iceberg catalog named osprey. The properties are
// those of Iceberg's documentation: docs/spark-configuration.md (spark.sql.catalog.<name> =
// org.apache.iceberg.spark.SparkCatalog, .type = jdbc | glue, .uri, .warehouse, .io-impl,
// spark.sql.extensions), docs/jdbc.md (uri, jdbc.user, jdbc.password; the JDBC catalog's
// catalog_name is the Spark catalog's name, JdbcCatalog.initialize), docs/aws.md (S3FileIO,
// iceberg-aws-bundle, s3.endpoint, s3.path-style-access, client.region) and
// docs/spark-procedures.md (system.register_table(table, metadata_file)); a REST catalog:
// .type = rest, .uri, .warehouse, .credential, .token (spark-configuration.md), and
// rest.sigv4-enabled, rest.signing-name, rest.signing-region (aws.md, and AWS's S3 Tables
// guide for Spark).
func spark(d *doc, l Lake, pg pgDSN) error {
	d.c = "#"
	describe(d, l, pg)
	pkgs := []string{sparkRuntimePkg}
	if l.remote() {
		pkgs = append(pkgs, awsBundlePkg)
	}
	conf := []string{
		"spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
		"spark.sql.catalog." + CatalogName + "=org.apache.iceberg.spark.SparkCatalog",
	}
	cat := func(kv string) { conf = append(conf, "spark.sql.catalog."+CatalogName+"."+kv) }
	switch l.kind() {
	case Glue:
		d.say("Spark reads the Glue catalog live: each query sees the tables' current snapshots.")
		cat("type=glue")
	case iceberg.REST:
		d.say("Spark reads the REST catalog live: each query sees the tables' current snapshots.")
		cat("type=rest")
		cat("uri=" + l.REST.URI)
		switch l.restAuth() {
		case authCredential:
			d.say("Set %s to the catalog's OAuth2 client_id:client_secret first; it is not printed here.", CredentialVar)
			cat("credential=${" + CredentialVar + ":?set it to the REST catalog OAuth2 client_id:client_secret}")
		case authToken:
			d.say("Set %s to the catalog's bearer token first; it is not printed here.", TokenVar)
			cat("token=${" + TokenVar + ":?set it to the REST catalog bearer token}")
		case authSigV4:
			d.say("Requests to the catalog are signed with the default AWS chain's credentials.")
			cat("rest.sigv4-enabled=true")
			cat("rest.signing-name=" + l.REST.SigV4)
			cat("rest.signing-region=" + regionOr(l, "<region>"))
		}
	case iceberg.Postgres:
		d.say("Spark reads the PostgreSQL catalog live (Iceberg's JDBC catalog): each query sees the")
		d.say("tables' current snapshots. The Spark catalog must be named %s: Iceberg's JDBC catalog reads", CatalogName)
		d.say("the rows of the catalog name it is given, and osprey's rows are under %s.", CatalogName)
		d.say("Set %s to the catalog database's password first; it is not printed here.", PasswordVar)
		if len(pg.dropped) > 0 {
			d.say("The DSN's parameters %v have no JDBC equivalent here: add them to the uri if needed.", pg.dropped)
		}
		pkgs = append(pkgs, "org.postgresql:postgresql:"+pgJDBCVersion)
		cat("type=jdbc")
		cat("uri=" + pg.jdbcURL())
		cat("jdbc.user=" + pg.userOr("<user>"))
		cat("jdbc.password=${" + PasswordVar + ":?set it to the catalog database password}")
	case iceberg.SQLite:
		d.say("The embedded SQLite catalog is a file on this machine: Spark run here reads it (Iceberg's JDBC")
		d.say("catalog over SQLite) and sees the tables live. The Spark catalog must be named %s: Iceberg's", CatalogName)
		d.say("JDBC catalog reads the rows of the catalog name it is given. For Spark elsewhere, use a")
		d.say("PostgreSQL catalog (--catalog postgres://...) or Glue.")
		pkgs = append(pkgs, "org.xerial:sqlite-jdbc:"+sqliteJDBCVer)
		cat("type=jdbc")
		cat("uri=jdbc:sqlite:" + sqliteFile(l))
	}
	switch {
	case l.kind() != iceberg.REST:
		cat("warehouse=" + l.Location)
	case l.REST.Warehouse != "":
		cat("warehouse=" + l.REST.Warehouse) // the server's warehouse, not a location
	}
	if l.remote() {
		cat("io-impl=org.apache.iceberg.aws.s3.S3FileIO")
		cat("client.region=" + regionOr(l, "<region>"))
		if l.Endpoint != "" {
			cat("s3.endpoint=" + l.Endpoint)
		}
		if l.PathStyle {
			cat("s3.path-style-access=true")
		}
		d.say("S3 credentials come from the default AWS chain (environment, profile, instance role).")
	}
	d.say("osprey owns these tables: read them, do not write them from Spark.")
	d.blank()
	d.code("ICEBERG_VERSION="+icebergVersion+" # an Iceberg release with a runtime for your Spark",
		"SPARK_SCALA="+sparkScala+"    # your Spark and Scala versions",
		"spark-sql \\",
		"  --packages \""+strings.Join(pkgs, ",")+"\" \\")
	for i, c := range conf {
		end := " \\"
		if i == len(conf)-1 {
			end = ""
		}
		q := shellQuote(c)
		if strings.Contains(c, "${") {
			q = `"` + c + `"` // the shell expands the password variable
		}
		d.code("  --conf " + q + end)
	}
	d.blank()
	d.say("Then, for example:")
	for _, t := range l.Tables {
		d.say("  SELECT * FROM %s.%s.%s LIMIT 10;", CatalogName, t.DB, t.Table)
	}
	if l.kind() == iceberg.SQLite && l.remote() {
		d.blank()
		d.say("Spark elsewhere can register the tables' current metadata files in an Iceberg catalog of its")
		d.say("own (here named iceberg):")
		d.blank()
		pointInTime(d, "use a PostgreSQL or Glue catalog")
		d.blank()
		for _, t := range l.Tables {
			d.say("  CALL iceberg.system.register_table(table => %s, metadata_file => %s);",
				sqlString(t.DB+"."+t.Table), sqlString(t.Location))
		}
		d.say("To refresh, first: DROP TABLE iceberg.<db>.<table>; (without PURGE, which would delete osprey's files)")
	}
	return nil
}
