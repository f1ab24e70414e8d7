package s3src

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/source/health"
	"github.com/ospreyhq/osprey/ingest/source/s3src/s3test"
)

// appended records what a Queue appends (the pipeline's seam).
type appended struct {
	mu    sync.Mutex
	recs  map[string][]string // by source name
	files map[string]batch.SourceFile
	busy  int // appends to refuse with errBusy first
}

var errBusy = errors.New("busy")

func (a *appended) AppendObject(ctx context.Context, source string, file batch.SourceFile, records [][]byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.busy > 0 {
		a.busy--
		return errBusy
	}
	if a.recs == nil {
		a.recs, a.files = map[string][]string{}, map[string]batch.SourceFile{}
	}
	for _, r := range records {
		a.recs[source] = append(a.recs[source], string(r))
		a.files[string(r)] = file
	}
	return nil
}

// fakeSQS records what a Queue does with messages (the SQSAPI seam); moto_test.go runs the
// real protocol.
type fakeSQS struct {
	mu      sync.Mutex
	deleted []string
	hidden  int
}

func (f *fakeSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (f *fakeSQS) DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, aws.ToString(in.ReceiptHandle))
	return &sqs.DeleteMessageOutput{}, nil
}

func (f *fakeSQS) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hidden++
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

type recordedErrors struct {
	mu   sync.Mutex
	errs []ingest.SourceError
}

func (r *recordedErrors) Record(ctx context.Context, e ingest.SourceError) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, e)
	return nil
}

func message(id, body string) types.Message {
	return types.Message{MessageId: aws.String(id), ReceiptHandle: aws.String("rh-" + id), Body: aws.String(body),
		Attributes: map[string]string{"SentTimestamp": "1700000000000"}}
}

func s3Event(bucket string, keys ...string) string {
	var recs []string
	for _, k := range keys {
		recs = append(recs, fmt.Sprintf(`{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":%q},"object":{"key":%q,"size":10}}}`, bucket, k))
	}
	return `{"Records":[` + strings.Join(recs, ",") + `]}`
}

func testRouter() *Router {
	src := func(id string) *ingest.Source { return &ingest.Source{Source: batch.Source{ID: id, Label: id}} }
	return NewRouter("logs", "AWSLogs/", Route{Name: "trail", Source: src("trail")}, []Route{
		{Prefix: "AWSLogs/app/", Name: "trail:AWSLogs/app/", Source: src("trail")},
		{Prefix: "AWSLogs/app/digest/", Exclude: true},
	})
}

// TestQueueHandle handles messages against the in-process S3: records land under the route of
// the longest matching prefix with their object; excluded, filtered and zero-size objects are
// skipped; a message is deleted once all its objects are in; a failing object is retried with
// backoff, then recorded, and its message is left on the queue.
func TestQueueHandle(t *testing.T) {
	srv := s3test.New()
	defer srv.Close()
	srv.Put("logs", "AWSLogs/a b.json.gz", gz([]byte(`{"Records":[{"n":1},{"n":2}]}`+"\n")), time.Time{})
	srv.Put("logs", "AWSLogs/app/x.log", []byte("line 1\nline 2\n"), time.Time{})
	srv.Put("logs", "AWSLogs/app/digest/d.json", []byte(`{"digest":1}`), time.Time{})
	srv.Put("logs", "other/o.json", []byte(`{"o":1}`), time.Time{})
	srv.Put("logs", "AWSLogs/bad.json", []byte(`{"bad":1}`), time.Time{})
	srv.FailGets("logs", "AWSLogs/bad.json", 100)
	srv.Put("logs", "AWSLogs/flaky.json", []byte(`{"flaky":1}`), time.Time{})
	srv.FailGets("logs", "AWSLogs/flaky.json", 2)

	app := &appended{busy: 2}
	fs := &fakeSQS{}
	errs := &recordedErrors{}
	var waits []time.Duration
	var wmu sync.Mutex
	h := &health.Source{}
	q := NewQueue(fs, srv.Client(), testRouter(), app, errs, h, QueueOptions{
		URL: "q", MaxAttempts: 3, Backoff: time.Second,
		Retryable: func(err error) bool { return errors.Is(err, errBusy) },
		Now:       func() time.Time { return time.Unix(1700000060, 0) },
		Wait: func(ctx context.Context, d time.Duration) error {
			if d >= time.Second && d <= time.Minute { // retries of objects, not the visibility ticker (2.5 min) or busy waits
				wmu.Lock()
				waits = append(waits, d)
				wmu.Unlock()
			}
			if d > time.Minute {
				<-ctx.Done() // the visibility ticker: never fires in this test
				return ctx.Err()
			}
			return nil
		},
	})
	ctx := context.Background()
	// a+b.json.gz: '+' is a space in S3 event keys.
	if !q.Handle(ctx, message("m1", s3Event("logs", "AWSLogs/a+b.json.gz", "AWSLogs/app/x.log", "AWSLogs/app/digest/d.json", "other/o.json"))) {
		t.Error("m1 not deleted")
	}
	if !q.Handle(ctx, message("m2", s3Event("logs", "AWSLogs/flaky.json"))) {
		t.Error("m2 (an object that fails twice) not deleted")
	}
	if q.Handle(ctx, message("m3", s3Event("logs", "AWSLogs/bad.json"))) {
		t.Error("m3 (an object that always fails) deleted")
	}
	if !q.Handle(ctx, message("m4", `{"Event":"s3:TestEvent"}`)) {
		t.Error("test event not deleted")
	}
	if q.Handle(ctx, message("m5", `garbage`)) {
		t.Error("garbage deleted")
	}
	// m1 again (redelivered): its objects are remembered, nothing is appended twice.
	if !q.Handle(ctx, message("m1", s3Event("logs", "AWSLogs/a+b.json.gz"))) {
		t.Error("m1 again not deleted")
	}

	if got := strings.Join(app.recs["trail"], " "); got != `{"n":1} {"n":2} {"flaky":1}` {
		t.Errorf("trail records %q", got)
	}
	if got := strings.Join(app.recs["trail:AWSLogs/app/"], "|"); got != "line 1|line 2" {
		t.Errorf("app records %q", got)
	}
	if f := app.files[`{"n":1}`]; f != (batch.SourceFile{Bucket: "logs", Key: "AWSLogs/a b.json.gz"}) {
		t.Errorf("p_source_file %+v", f)
	}
	if len(app.recs) != 2 {
		t.Errorf("appended under %v", app.recs)
	}
	if got := strings.Join(fs.deleted, ","); got != "rh-m1,rh-m2,rh-m4,rh-m1" {
		t.Errorf("deleted %s", got)
	}
	if len(errs.errs) != 1 || errs.errs[0].File.Key != "AWSLogs/bad.json" || errs.errs[0].Attempts != 3 ||
		!strings.Contains(errs.errs[0].Err, "500") || errs.errs[0].MessageID != "m3" {
		t.Errorf("recorded errors %+v", errs.errs)
	}
	// flaky: 1 s, 2 s; bad: 1 s, 2 s (then recorded).
	if fmt.Sprint(waits) != "[1s 2s 1s 2s]" {
		t.Errorf("backoff waits %v", waits)
	}
	if n := srv.Gets("logs", "AWSLogs/a b.json.gz"); n != 1 {
		t.Errorf("a b.json.gz read %d times", n)
	}
	snap := h.Snapshot(time.Unix(1700000060, 0))
	if snap.Objects != 3 || snap.Records != 5 || snap.Errors == 0 || snap.Lag != 0 {
		t.Errorf("health %+v", snap)
	}
}

// TestQueueRetryGoesOn checks that an object read again after a failure mid-way (here: an
// append refused for good after the first chunk) does not append its first records twice.
func TestQueueRetryGoesOn(t *testing.T) {
	srv := s3test.New()
	defer srv.Close()
	var body strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&body, `{"i":%d,"pad":"%s"}`+"\n", i, strings.Repeat("p", 50))
	}
	srv.Put("logs", "AWSLogs/big.json", []byte(body.String()), time.Time{})
	app := &failOnce{}
	q := NewQueue(&fakeSQS{}, srv.Client(), testRouter(), app, nil, nil, QueueOptions{
		URL: "q", Split: SplitOptions{ChunkSize: 32 << 10},
		Wait: func(ctx context.Context, d time.Duration) error {
			if d > time.Minute {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		},
	})
	if !q.Handle(context.Background(), message("m", s3Event("logs", "AWSLogs/big.json"))) {
		t.Fatal("not deleted")
	}
	seen := map[string]int{}
	for _, r := range app.recs {
		seen[r]++
	}
	if len(app.recs) != 3000 || len(seen) != 3000 {
		t.Errorf("%d records appended, %d distinct, want 3000", len(app.recs), len(seen))
	}
}

// failOnce refuses its second append once, as a failing disk would.
type failOnce struct {
	n    int
	recs []string
}

func (f *failOnce) AppendObject(ctx context.Context, source string, file batch.SourceFile, records [][]byte) error {
	f.n++
	if f.n == 2 {
		return errors.New("disk full")
	}
	for _, r := range records {
		f.recs = append(f.recs, string(r))
	}
	return nil
}

// hidingSQS closes extended at the first visibility extension.
type hidingSQS struct {
	fakeSQS
	once     sync.Once
	extended chan struct{}
}

func (h *hidingSQS) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	h.once.Do(func() { close(h.extended) })
	if aws.ToInt32(&in.VisibilityTimeout) != 120 {
		return nil, fmt.Errorf("visibility %d, want 120", in.VisibilityTimeout)
	}
	return h.fakeSQS.ChangeMessageVisibility(ctx, in, o...)
}

// waitingAppender appends only once the message's visibility was extended: a large object.
type waitingAppender struct {
	appended
	extended chan struct{}
}

func (w *waitingAppender) AppendObject(ctx context.Context, source string, file batch.SourceFile, records [][]byte) error {
	<-w.extended
	return w.appended.AppendObject(ctx, source, file, records)
}

// TestQueueExtendsVisibility checks that a message is kept hidden while its object is read
// (every half of the visibility timeout, here on an injected clock), and deleted after.
func TestQueueExtendsVisibility(t *testing.T) {
	srv := s3test.New()
	defer srv.Close()
	srv.Put("logs", "AWSLogs/slow.json", []byte(`{"slow":1}`), time.Time{})
	fs := &hidingSQS{extended: make(chan struct{})}
	app := &waitingAppender{extended: fs.extended}
	var asked []time.Duration
	var mu sync.Mutex
	q := NewQueue(fs, srv.Client(), testRouter(), app, nil, nil, QueueOptions{
		URL: "q", Visibility: 2 * time.Minute,
		Wait: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			asked = append(asked, d)
			n := len(asked)
			mu.Unlock()
			if n == 1 {
				return nil // the first half-timeout passes
			}
			<-ctx.Done()
			return ctx.Err()
		},
	})
	if !q.Handle(context.Background(), message("m", s3Event("logs", "AWSLogs/slow.json"))) {
		t.Fatal("not deleted")
	}
	if fs.hidden == 0 || len(fs.deleted) != 1 || asked[0] != time.Minute {
		t.Errorf("extended %d times, deleted %v, waits %v", fs.hidden, fs.deleted, asked)
	}
}
