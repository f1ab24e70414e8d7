package restcattest_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ospreyhq/osprey/ingest/source/s3src/s3test"
	"github.com/ospreyhq/osprey/internal/awsx"
	"github.com/ospreyhq/osprey/internal/restcattest"
	"github.com/ospreyhq/osprey/lake/objstore"
)

// TestS3Warehouse: with a warehouse in a bucket of moto_server, opened by lake/objstore in the
// same process, the server's metadata and the client's data files go to the bucket.
func TestS3Warehouse(t *testing.T) {
	ctx := context.Background()
	m := s3test.StartMoto(t)
	m.CreateBucket(t, "rest-bucket")
	m.SetEnv(t)
	store, err := objstore.Open(ctx, "s3://rest-bucket/wh", awsx.AWS{PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := restcattest.Start(t, "s3://rest-bucket/wh")
	tbl := newTable(t, client(t, srv), "events", nil)
	if tbl, err = appendRows(t, tbl, 1, 2, 3); err != nil {
		t.Fatalf("append: %v", err)
	}
	if !strings.HasPrefix(tbl.MetadataLocation(), "s3://rest-bucket/wh/") {
		t.Errorf("metadata location = %s; want it under s3://rest-bucket/wh/", tbl.MetadataLocation())
	}
	other := mustLoad(t, client(t, srv), append(slices.Clone(ns), "events"))
	if got := countRows(t, other); got != 3 {
		t.Errorf("rows = %d; want 3", got)
	}

	var keys []string
	out, err := store.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("rest-bucket"), Prefix: aws.String("wh/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		keys = append(keys, *o.Key)
	}
	hasSuffix := func(suffix string) bool {
		return slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, suffix) })
	}
	if !hasSuffix(".metadata.json") || !hasSuffix(".parquet") {
		t.Errorf("objects in the bucket = %v; want metadata and parquet files", keys)
	}
}
