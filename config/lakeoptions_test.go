package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// TestLakeOptions: where the configuration puts the lake, its state and its catalog.
func TestLakeOptions(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/state")
	t.Setenv("TEST_DSN", "postgres://osprey@db:5432/lake")
	t.Setenv("TEST_TOKEN", "secret-token")
	for _, tc := range []struct {
		name, yaml string
		check      func(t *testing.T, c *Config)
		err        string
	}{
		{name: "local", yaml: "lake: ./data", check: func(t *testing.T, c *Config) {
			o, err := c.LakeOptions()
			if err != nil || o.Dir != "./data" || o.Location != "" || o.Catalog != "" {
				t.Errorf("%+v, %v", o, err)
			}
		}},
		{name: "s3 with postgres", yaml: "lake: s3://b/p/q\nlakeS3: {region: eu-west-1, roleARN: arn:aws:iam::1:role/r}\ncatalog: {type: postgres, dsnEnv: TEST_DSN}",
			check: func(t *testing.T, c *Config) {
				o, err := c.LakeOptions()
				if err != nil || o.Location != "s3://b/p/q" || o.Dir != filepath.Join("/var/state", "osprey", "s3", "b", "p", "q") ||
					o.Catalog != iceberg.Postgres || o.CatalogDSN != "postgres://osprey@db:5432/lake" || o.AWS.Region != "eu-west-1" || o.AWS.RoleARN == "" {
					t.Errorf("%+v, %v", o, err)
				}
			}},
		{name: "s3 with a state and rest", yaml: "lake: s3://b/p\nstate: /srv/osprey\ncatalog: {type: rest, uri: https://cat.example, warehouse: w, tokenEnv: TEST_TOKEN}",
			check: func(t *testing.T, c *Config) {
				o, err := c.LakeOptions()
				if err != nil || o.Dir != "/srv/osprey" || o.Catalog != iceberg.REST || o.REST.URI != "https://cat.example" || o.REST.Warehouse != "w" || o.REST.Token != "secret-token" {
					t.Errorf("%+v, %v", o, err)
				}
			}},
		{name: "glue needs s3", yaml: "lake: ./data\ncatalog: {type: glue}", err: "glue needs the lake in S3"},
		{name: "rest needs a uri", yaml: "lake: s3://b/p\ncatalog: {type: rest}", err: "rest needs its uri"},
		{name: "postgres needs a dsn", yaml: "catalog: {type: postgres, dsnEnv: UNSET_VARIABLE_OF_TEST}", err: "needs a dsn"},
		{name: "unknown catalog", yaml: "catalog: {type: hive}", err: "unknown type"},
		{name: "bad location", yaml: "lake: s3://b/../p", err: "not an S3 location"},
		{name: "state of a local lake", yaml: "lake: ./data\nstate: /x", err: "only a lake in S3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "osprey.yml")
			if err == nil && tc.check != nil {
				tc.check(t, c)
				return
			}
			if err == nil {
				_, err = c.LakeOptions()
			}
			if tc.err == "" || err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want one with %q", err, tc.err)
			}
		})
	}
}
