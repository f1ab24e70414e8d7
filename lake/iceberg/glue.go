package iceberg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	ice "github.com/apache/iceberg-go"
	gluecat "github.com/apache/iceberg-go/catalog/glue"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
)

// A Glue catalog keeps each table as a Glue table of the database of the same name, with the
// parameters Athena reads: table_type=ICEBERG and metadata_location (iceberg-go's Glue
// catalog). Glue has no transaction over several tables: a commit changes its tables one after
// the other, each with Glue's optimistic lock (the table's VersionId), and a change is applied
// to a table unless that table already has a snapshot of the same writer instance and flush
// number (its summary's osprey.instance and osprey.flush). So a flush that a crash cut between
// two tables is finished, table by table, without adding anything twice; a reader may see one
// table of a flush before the other. The writers' records (Catalog.Meta, Flushed) are small
// objects in the lake's store, _osprey/records/, written once every table is committed.

// glueCatalog is Glue's API and what the records need.
type glueCatalog struct {
	client    *glue.Client
	catalogID *string
}

// openGlue opens a Glue catalog; the lake's tables must be in an object store.
func (c *Catalog) openGlue(ctx context.Context, o Options) error {
	if !c.Remote() {
		return errors.New("a Glue catalog needs the lake in S3 (--lake s3://bucket/prefix): engines read its tables there")
	}
	cfg, err := o.AWS.Config(ctx)
	if err != nil {
		return err
	}
	props := gluecat.AwsProperties{}
	g := &glueCatalog{client: glue.NewFromConfig(cfg)}
	if o.GlueCatalogID != "" {
		props[gluecat.CatalogIdKey] = o.GlueCatalogID
		g.catalogID = aws.String(o.GlueCatalogID)
	}
	cat, err := gluecat.NewCatalog(gluecat.WithAwsConfig(cfg), gluecat.WithAwsProperties(props))
	if err != nil {
		return fmt.Errorf("open glue catalog: %w", err)
	}
	c.cat, c.glue = cat, g
	return nil
}

// commitPerTable applies changes table by table (see the top of the file), then records rec.
func (c *Catalog) commitPerTable(ctx context.Context, changes []Change, props ice.Properties, rec Record) error {
	changes = slices.Clone(changes)
	slices.SortFunc(changes, func(a, b Change) int { return strings.Compare(a.DB+"."+a.Table, b.DB+"."+b.Table) })
	for _, ch := range changes {
		if err := c.commitTable(ctx, ch, props, rec); err != nil {
			return err
		}
	}
	return c.writeRecords(ctx, rec)
}

// commitTable applies a change to one table, staged again on the table as it is now while
// other commits win (Glue's ConcurrentModificationException, a REST catalog's 409).
func (c *Catalog) commitTable(ctx context.Context, ch Change, props ice.Properties, rec Record) error {
	for attempt := 1; ; attempt++ {
		t, err := c.load(ctx, ch.DB, ch.Table)
		if err != nil {
			return err
		}
		if rec.Instance != "" && hasFlush(t.Metadata(), rec.Instance, rec.Flush) {
			return nil // committed before a crash
		}
		txn, err := c.changeTxn(ctx, t, t, ch, props)
		if err == nil {
			_, err = txn.Commit(ctx)
		}
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, table.ErrCommitFailed):
			return fmt.Errorf("commit %s.%s to the %s catalog: %w", ch.DB, ch.Table, c.kind, err)
		case attempt == commitAttempts:
			return fmt.Errorf("%w: other commits to %s.%s won %d times in a row", ErrConflict, ch.DB, ch.Table, attempt)
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// hasFlush reports whether a table has a snapshot of a writer instance's flush.
func hasFlush(md table.Metadata, instance string, flush int64) bool {
	n := strconv.FormatInt(flush, 10)
	for _, s := range md.Snapshots() {
		if s.Summary != nil && s.Summary.Properties[SummaryInstance] == instance && s.Summary.Properties[SummaryFlush] == n {
			return true
		}
	}
	return false
}

// recordLoc is where a Glue catalog keeps a record of kind (records, flushes) for name.
func (c *Catalog) recordLoc(kind, name string) string {
	return c.warehouse + "/_osprey/" + kind + "/" + name + ".json"
}

// writeRecords stores a commit's records of its writer.
func (c *Catalog) writeRecords(ctx context.Context, rec Record) error {
	fio, err := c.fileIO(ctx)
	if err != nil {
		return err
	}
	w := fio.(icebergio.WriteFileIO)
	if rec.Writer != "" && rec.Meta != nil {
		b, err := json.Marshal(rec.Meta)
		if err != nil {
			return err
		}
		if err := w.WriteFile(c.recordLoc("records", rec.Writer), b); err != nil {
			return fmt.Errorf("record the commit of %s: %w", rec.Writer, err)
		}
	}
	if rec.Instance != "" {
		if err := w.WriteFile(c.recordLoc("flushes", rec.Instance), []byte(strconv.FormatInt(rec.Flush, 10))); err != nil {
			return fmt.Errorf("record the flush of %s: %w", rec.Instance, err)
		}
	}
	return nil
}

// readRecord returns a record's content, or nil when there is none.
func (c *Catalog) readRecord(ctx context.Context, kind, name string) ([]byte, error) {
	fio, err := c.fileIO(ctx)
	if err != nil {
		return nil, err
	}
	b, err := fio.(icebergio.ReadFileIO).ReadFile(c.recordLoc(kind, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// currentGlue returns every Iceberg table's current metadata location, database by database.
func (c *Catalog) currentGlue(ctx context.Context) ([]Pointer, error) {
	var out []Pointer
	dbs := glue.NewGetDatabasesPaginator(c.glue.client, &glue.GetDatabasesInput{CatalogId: c.glue.catalogID})
	for dbs.HasMorePages() {
		page, err := dbs.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("glue catalog: %w", err)
		}
		for _, db := range page.DatabaseList {
			name := aws.ToString(db.Name)
			if checkName(name) != nil {
				continue
			}
			tables := glue.NewGetTablesPaginator(c.glue.client, &glue.GetTablesInput{CatalogId: c.glue.catalogID, DatabaseName: db.Name})
			for tables.HasMorePages() {
				tp, err := tables.NextPage(ctx)
				if err != nil {
					return nil, fmt.Errorf("glue catalog: tables of %s: %w", name, err)
				}
				for _, t := range tp.TableList {
					if p, ok := gluePointer(name, t); ok {
						out = append(out, p)
					}
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Pointer) int { return strings.Compare(a.DB+"."+a.Table, b.DB+"."+b.Table) })
	return out, nil
}

func gluePointer(db string, t gluetypes.Table) (Pointer, bool) {
	loc := t.Parameters["metadata_location"]
	if !strings.EqualFold(t.Parameters["table_type"], "ICEBERG") || loc == "" || checkName(aws.ToString(t.Name)) != nil {
		return Pointer{}, false
	}
	return Pointer{DB: db, Table: aws.ToString(t.Name), Location: loc}, true
}
