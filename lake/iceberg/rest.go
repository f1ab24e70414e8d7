package iceberg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/iceberg-go/catalog/rest"
)

// An Iceberg REST catalog (Polaris, Nessie, Lakekeeper, S3 Tables, ...) is used as a Glue
// catalog is (see glue.go): a commit changes its tables one after the other, through the
// server's own optimistic commit (a 409 is a lost race, staged again), a table that has the
// flush already is skipped, and the writers' records are objects in the lake's store.

// RESTOptions reach an Iceberg REST catalog.
type RESTOptions struct {
	// URI is the catalog's base URI, such as https://polaris.example.com/api/catalog.
	URI string
	// Warehouse names the catalog's warehouse where the server serves several (Polaris's
	// catalog name, Lakekeeper's warehouse).
	Warehouse string
	// Credential is an OAuth2 client credential (client_id:client_secret); Token a bearer
	// token. Either, or neither.
	Credential, Token string
	// SigV4 signs requests with AWS Signature Version 4 for this service ("s3tables" for
	// S3 Tables, "glue" for Glue's REST endpoint), with the lake's AWS configuration.
	SigV4 string
}

// openREST opens a REST catalog; the lake's tables must be in an object store, where the
// writers' records are kept.
func (c *Catalog) openREST(ctx context.Context, o Options) error {
	if !c.Remote() {
		return errors.New("a REST catalog needs the lake in S3 (--lake s3://bucket/prefix): engines read its tables there")
	}
	r := o.REST
	if r.URI == "" {
		return errors.New("the rest catalog needs its uri")
	}
	var opts []rest.Option
	if r.Warehouse != "" {
		opts = append(opts, rest.WithWarehouseLocation(r.Warehouse))
	}
	if r.Credential != "" {
		opts = append(opts, rest.WithCredential(r.Credential))
	}
	if r.Token != "" {
		opts = append(opts, rest.WithOAuthToken(r.Token))
	}
	if r.SigV4 != "" {
		cfg, err := o.AWS.Config(ctx)
		if err != nil {
			return err
		}
		opts = append(opts, rest.WithAwsConfig(cfg), rest.WithSigV4RegionSvc(cfg.Region, r.SigV4))
	}
	cat, err := rest.NewCatalog(ctx, catalogName, r.URI, opts...)
	if err != nil {
		return fmt.Errorf("open rest catalog %s: %w", r.URI, err)
	}
	c.cat = cat
	return nil
}

// currentREST returns every table's current metadata location, namespace by namespace: one
// request per table (the REST API has no bulk read).
func (c *Catalog) currentREST(ctx context.Context) ([]Pointer, error) {
	nss, err := c.cat.ListNamespaces(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("rest catalog: %w", err)
	}
	var out []Pointer
	for _, ns := range nss {
		if len(ns) != 1 || checkName(ns[0]) != nil {
			continue
		}
		for id, err := range c.cat.ListTables(ctx, ns) {
			if err != nil {
				return nil, fmt.Errorf("rest catalog: tables of %s: %w", ns[0], err)
			}
			if len(id) != 2 || checkName(id[1]) != nil {
				continue
			}
			t, err := c.load(ctx, id[0], id[1])
			if errors.Is(err, ErrNoTable) {
				continue // dropped since listed
			}
			if err != nil {
				return nil, err
			}
			out = append(out, Pointer{DB: id[0], Table: id[1], Location: t.MetadataLocation()})
		}
	}
	slices.SortFunc(out, func(a, b Pointer) int { return strings.Compare(a.DB+"."+a.Table, b.DB+"."+b.Table) })
	return out, nil
}
