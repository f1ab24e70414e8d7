package s3src_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/pipeline"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/source/health"
	"github.com/ospreyhq/osprey/ingest/source/s3src"
	"github.com/ospreyhq/osprey/ingest/source/s3src/s3test"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// trailFile is a CloudTrail log file of n events named prefix-i.
func trailFile(prefix string, n int) []byte {
	var recs []string
	for i := range n {
		recs = append(recs, fmt.Sprintf(`{"eventVersion":"1.08","eventTime":"2026-11-22T10:%02d:00Z","eventSource":"s3.amazonaws.com","eventName":"%s-%d","awsRegion":"us-east-1","sourceIPAddress":"10.0.0.%d","recipientAccountId":"123456789012"}`, i%60, prefix, i, i%250))
	}
	return []byte(`{"Records":[` + strings.Join(recs, ",") + "]}\n")
}

// TestMotoNotifications runs the S3 source against moto's S3, SNS and SQS with real bucket
// notifications: objects uploaded are read into the lake through the durable pipeline, with
// their object as p_source_file, and every message is deleted; CloudTrail's own SNS
// notifications are read too, a test event is ignored, and a KMS-encrypted object is read.
func TestMotoNotifications(t *testing.T) {
	m := s3test.StartMoto(t)
	n := s3test.SetUpNotifications(t, m, "trail-logs")
	ctx := context.Background()

	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Open(ctx, l, pipeline.Options{FlushAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	trail, err := reg.Lookup("AWS.CloudTrail")
	if err != nil {
		t.Fatal(err)
	}
	src := &ingest.Source{Source: batch.Source{ID: "trail", Label: "CloudTrail"}, LogTypes: []*logtypes.LogType{trail}}
	p.SetSource(src)
	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- p.Run(runCtx) }()

	n.Put(t, "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/22/a b.json.gz", gzipped(trailFile("put", 50)), "")
	n.Put(t, "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/22/kms.json.gz", gzipped(trailFile("kms", 5)), "arn:aws:kms:us-east-1:123456789012:key/osprey-test")
	n.Put(t, "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/22/empty.json.gz", nil, "")
	n.Put(t, "other/ignored.json", trailFile("ignored", 3), "") // outside the prefix filter
	// CloudTrail's own notification (published to the topic as CloudTrail does): the objects it
	// names are read too (this one also gets an S3 event; it is read once).
	n.Put(t, "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/22/ct.json", trailFile("ct", 7), "")
	ct, _ := json.Marshal(map[string]any{"s3Bucket": n.Bucket, "s3ObjectKey": []string{"AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/22/ct.json"}})
	if _, err := n.SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(n.TopicARN), Message: aws.String(string(ct))}); err != nil {
		t.Fatal(err)
	}
	// The test event S3 sends when notifications are set up, as an SNS message.
	if _, err := n.SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(n.TopicARN), Message: aws.String(`{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"trail-logs"}`)}); err != nil {
		t.Fatal(err)
	}
	want := n.Pending(t)
	if want < 6 {
		t.Fatalf("%d messages in the queue, want at least 6 (5 uploads, 2 published)", want)
	}

	router := s3src.NewRouter(n.Bucket, "AWSLogs/", s3src.Route{Name: "trail", Source: src}, nil)
	qctx, stopQueue := context.WithCancel(ctx)
	var mu sync.Mutex
	handled := 0
	h := &health.Source{}
	q := s3src.NewQueue(n.SQS, n.S3, router, p, nil, h, s3src.QueueOptions{
		URL: n.QueueURL,
		Retryable: func(err error) bool {
			return errors.Is(err, pipeline.ErrBusy)
		},
		Handled: func(id string, deleted bool) {
			if !deleted {
				t.Errorf("message %s not deleted", id)
			}
			mu.Lock()
			defer mu.Unlock()
			if handled++; handled == want {
				stopQueue()
			}
		},
	})
	if err := q.Run(qctx); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if left := n.Pending(t); left != 0 {
		t.Errorf("%d messages left in the queue", left)
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	stopRun()
	<-runDone
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}

	db, err := query.Open(ctx, l, query.Options{MemoryLimit: "1GB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.SQL().Query(`SELECT split_part(eventName, '-', 1), count(*), count(DISTINCT eventName), min(p_source_file.aws_s3_bucket), min(p_source_file.aws_s3_key), min(p_source_id)
		FROM panther_logs.aws_cloudtrail GROUP BY 1 ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var name, bucket, key, source string
		var count, distinct int
		if err := rows.Scan(&name, &count, &distinct, &bucket, &key, &source); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %d %d %s %s %s", name, count, distinct, bucket, key[strings.LastIndexByte(key, '/')+1:], source))
	}
	wantRows := []string{
		"ct 7 7 trail-logs ct.json trail",
		"kms 5 5 trail-logs kms.json.gz trail",
		"put 50 50 trail-logs a b.json.gz trail",
	}
	if strings.Join(got, "\n") != strings.Join(wantRows, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
	}
	if snap := h.Snapshot(time.Now()); snap.Objects != 3 || snap.Records != 62 || !snap.Healthy {
		t.Errorf("health %+v", snap)
	}
}
