package connect

import (
	"encoding/json"
	"fmt"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// athena: Athena reads Iceberg tables only through the AWS Glue Data Catalog, and only those a
// Glue table points at with the parameters table_type=ICEBERG and metadata_location (Athena:
// "Detected Iceberg type table without metadata location"; Iceberg's GlueTableOperations and
// Apache XTable's IcebergGlueCatalogSyncHelper register tables with exactly these, TableType
// EXTERNAL_TABLE and StorageDescriptor.Location; Glue columns are informational only, per
// Iceberg's IcebergToGlueConverter.setTableInputInformation). Athena's own CREATE TABLE ...
// TBLPROPERTIES ('table_type'='ICEBERG') makes a new, empty table, so an existing table is
// registered through the Glue API (aws glue create-table / update-table). A REST catalog's
// tables are registered so too, except AWS Glue's own REST endpoint (already Glue) and Amazon S3
// Tables, which Athena reads once the table bucket is integrated with the AWS analytics
// services, as the catalog s3tablescatalog/BUCKET (Athena's "Register S3 table bucket catalogs
// and query Tables from Athena").
func athena(d *doc, l Lake, pg pgDSN) error {
	switch {
	case !l.remote():
		return fmt.Errorf("%w: Athena reads tables in Amazon S3 through the AWS Glue Data Catalog, and this lake is in a local directory (%s). Move the lake to S3 (--lake s3://bucket/prefix, or lake: in the configuration) with the glue catalog, then run this again; or read it on this machine with --engine duckdb or spark", ErrCannot, l.Location)
	case !l.amazonS3():
		return fmt.Errorf("%w: Athena reads Amazon S3 only, and this lake is in an S3-compatible store at %s. Use --engine trino, spark or duckdb, which take an endpoint", ErrCannot, l.Endpoint)
	}
	if l.kind() == iceberg.REST && l.s3Tables() {
		d.c = "--"
		describe(d, l, pg)
		d.say("Athena reads S3 Tables through the AWS analytics services integration: enable it once for the")
		d.say("table bucket (S3 console, or Lake Formation's \"Enable S3 Table integration\"), which puts the")
		d.say("bucket in the AWS Glue Data Catalog as the catalog s3tablescatalog/%s; grant the Athena", l.tableBucket())
		d.say("user access in Lake Formation (or IAM). Then, in region %s, engine version 3:", regionOr(l, "<region>"))
		d.blank()
		for _, t := range l.Tables {
			d.code(fmt.Sprintf(`SELECT * FROM "s3tablescatalog/%s"."%s"."%s" LIMIT 10;`, l.tableBucket(), t.DB, t.Table))
		}
		return nil
	}
	if l.kind() == Glue || l.kind() == iceberg.REST && l.glueREST() {
		d.c = "--"
		describe(d, l, pg)
		d.say("The Glue catalog is what Athena reads: every table osprey commits is in Glue with")
		d.say("table_type=ICEBERG and its current metadata_location, so Athena always sees the current snapshot.")
		d.say("In the Athena console or `aws athena start-query-execution`, in region %s, engine version 3,", regionOr(l, "<region>"))
		d.say("with a workgroup that has a query result location:")
		d.blank()
		athenaSelects(d, l, false)
		return nil
	}
	d.c = "#"
	describe(d, l, pg)
	d.say("Athena reads Iceberg tables only through the AWS Glue Data Catalog, and this lake's catalog is")
	d.say("%s. The commands below register each table's CURRENT metadata file in Glue (a Glue table with", l.kind())
	d.say("table_type=ICEBERG and metadata_location), creating it or updating it if it exists. Run them")
	d.say("with credentials allowed glue:GetDatabase, glue:CreateDatabase, glue:CreateTable and glue:UpdateTable.")
	d.blank()
	pointInTime(d, "use the glue catalog (catalog: type glue in osprey.yml), which Athena reads live")
	d.blank()
	region := ""
	if l.Region != "" {
		region = " --region " + shellQuote(l.Region)
	}
	d.code("set -e")
	for _, db := range l.databases() {
		input, _ := json.Marshal(map[string]string{"Name": db})
		d.code(fmt.Sprintf("aws glue get-database%s --name %s >/dev/null 2>&1 ||", region, shellQuote(db)),
			fmt.Sprintf("  aws glue create-database%s --database-input %s", region, shellQuote(string(input))))
	}
	d.code("register() {",
		fmt.Sprintf(`  aws glue create-table%s --database-name "$1" --table-input "$2" >/dev/null 2>&1 ||`, region),
		fmt.Sprintf(`    aws glue update-table%s --database-name "$1" --table-input "$2"`, region),
		"}")
	for _, t := range l.Tables {
		d.code(fmt.Sprintf("register %s %s", shellQuote(t.DB), shellQuote(glueTableInput(t))))
	}
	d.blank()
	d.say("Then, in Athena (region %s, engine version 3):", regionOr(l, "<region>"))
	d.blank()
	athenaSelects(d, l, true)
	return nil
}

// glueTableInput is the TableInput of Glue's CreateTable and UpdateTable for an Iceberg table
// whose current metadata is p.Location.
func glueTableInput(p iceberg.Pointer) string {
	type storage struct {
		Location string `json:"Location"`
	}
	b, _ := json.Marshal(struct {
		Name              string            `json:"Name"`
		TableType         string            `json:"TableType"`
		Parameters        map[string]string `json:"Parameters"`
		StorageDescriptor storage           `json:"StorageDescriptor"`
	}{
		Name:      p.Table,
		TableType: "EXTERNAL_TABLE",
		Parameters: map[string]string{
			"table_type":        "ICEBERG",
			"metadata_location": p.Location,
		},
		StorageDescriptor: storage{Location: tableLocation(p)},
	})
	return string(b)
}

// athenaSelects writes a query of each table, as comments of a shell script when commented.
func athenaSelects(d *doc, l Lake, commented bool) {
	for _, t := range l.Tables {
		line := fmt.Sprintf(`SELECT * FROM "%s"."%s" LIMIT 10;`, t.DB, t.Table)
		if commented {
			d.say("  %s", line)
			continue
		}
		d.code(line)
	}
}

func regionOr(l Lake, placeholder string) string {
	if l.Region == "" {
		return placeholder
	}
	return l.Region
}
