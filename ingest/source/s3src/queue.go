package s3src

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/source/health"
)

// SQSAPI is the part of the SQS API Queue uses; *sqs.Client has it.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

// Appender makes records durable; osprey serve's pipeline is one. Records appended under a
// route's name have the object as p_source_file.
type Appender interface {
	AppendObject(ctx context.Context, source string, file batch.SourceFile, records [][]byte) error
}

// ErrorRecorder keeps what a source gave up on (panther_monitor.source_errors).
type ErrorRecorder interface {
	Record(ctx context.Context, e ingest.SourceError) error
}

// QueueOptions configure a Queue.
type QueueOptions struct {
	// URL is the SQS queue's URL.
	URL string
	// MaxAttempts is how many times an object is tried before it is recorded as an error and
	// its message left to the queue's redrive policy; default 5.
	MaxAttempts int
	// Backoff is the wait after a first failure, doubled after each (at most a minute);
	// default 1 s.
	Backoff time.Duration
	// Visibility is how long a received message stays hidden from other consumers; it is
	// extended by as much every half of it while its objects are read. Default 5 min.
	Visibility time.Duration
	// Concurrency is how many messages are handled at once; default 4.
	Concurrency int
	// Retryable reports whether an append error means "later" (the pipeline is busy): the
	// append is retried in place, without counting an attempt.
	Retryable func(error) bool
	Split     SplitOptions
	// KMSKey is the key of SSE-KMS objects, named in errors reading them.
	KMSKey string
	Logger *slog.Logger
	// Handled, when set, is told of each message handled and whether it was deleted.
	Handled func(id string, deleted bool)
	// Now and Wait are the clock; default time.Now and a timer.
	Now  func() time.Time
	Wait func(ctx context.Context, d time.Duration) error
}

// Queue reads the objects that an SQS queue's notifications name into an Appender.
type Queue struct {
	sqs    SQSAPI
	s3     S3API
	router *Router
	app    Appender
	errs   ErrorRecorder
	opts   QueueOptions
	health *health.Source

	mu       sync.Mutex
	done     map[string]string        // objects read since start (bucket/key -> etag), in case they are named again
	ring     []string                 // done's keys in order, to forget the oldest
	inflight map[string]chan struct{} // objects being read, closed when done
}

// doneMemory is how many objects read are remembered.
const doneMemory = 10000

// NewQueue returns a Queue; errs may be nil (errors are then only logged and counted).
func NewQueue(sqsAPI SQSAPI, s3API S3API, router *Router, app Appender, errs ErrorRecorder, h *health.Source, opts QueueOptions) *Queue {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.Visibility <= 0 {
		opts.Visibility = 5 * time.Minute
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Retryable == nil {
		opts.Retryable = func(error) bool { return false }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Wait == nil {
		opts.Wait = Wait
	}
	if h == nil {
		h = &health.Source{}
	}
	return &Queue{sqs: sqsAPI, s3: s3API, router: router, app: app, errs: errs, opts: opts, health: h,
		done: map[string]string{}, inflight: map[string]chan struct{}{}}
}

// Health returns the queue's health.
func (q *Queue) Health() *health.Source { return q.health }

// Run receives and handles messages until ctx is done; it returns ctx's error.
func (q *Queue) Run(ctx context.Context) error {
	sem := make(chan struct{}, q.opts.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	failures := 0
	for ctx.Err() == nil {
		free := q.opts.Concurrency - len(sem)
		out, err := q.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(q.opts.URL),
			MaxNumberOfMessages:         int32(max(1, min(10, free))),
			WaitTimeSeconds:             20,
			VisibilityTimeout:           int32(q.opts.Visibility / time.Second),
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameSentTimestamp, types.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			q.health.Error(q.opts.Now(), fmt.Errorf("receive from %s: %w", q.opts.URL, err))
			q.opts.Logger.Warn("sqs receive", "queue", q.opts.URL, "err", err)
			if q.opts.Wait(ctx, backoff(q.opts.Backoff, failures)) != nil {
				break
			}
			continue
		}
		failures = 0
		for _, m := range out.Messages {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			wg.Go(func() {
				defer func() { <-sem }()
				deleted := q.Handle(ctx, m)
				q.opts.Logger.Info("sqs message handled", "message_id", aws.ToString(m.MessageId), "deleted", deleted)
				if q.opts.Handled != nil {
					q.opts.Handled(aws.ToString(m.MessageId), deleted)
				}
			})
		}
	}
	return ctx.Err()
}

// backoff is the wait before attempt n+1 after n failures.
func backoff(first time.Duration, n int) time.Duration {
	d := first
	for i := 1; i < n && d < time.Minute; i++ {
		d *= 2
	}
	return min(d, time.Minute)
}

// Handle reads the objects a message names and deletes it when every one is durable. It
// reports whether the message was deleted.
func (q *Queue) Handle(ctx context.Context, m types.Message) bool {
	id := aws.ToString(m.MessageId)
	sent := q.opts.Now()
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		sent = time.UnixMilli(ms)
	}
	q.health.Pending(id, sent)
	defer q.health.Done(id)
	refs, err := ParseNotification([]byte(aws.ToString(m.Body)))
	if err != nil {
		// Not for us: left to the redrive policy, which sets such messages aside.
		q.health.Error(q.opts.Now(), fmt.Errorf("message %s: %w", id, err))
		q.opts.Logger.Warn("sqs message is not a notification", "message_id", id, "err", err)
		return false
	}

	// Keep the message hidden while its objects are read.
	hctx, stopHide := context.WithCancel(ctx)
	var hiding sync.WaitGroup
	hiding.Go(func() { q.hide(hctx, m) })
	ok := true
	for _, ref := range refs {
		if !q.object(ctx, id, ref) {
			ok = false
		}
	}
	stopHide()
	hiding.Wait()
	if !ok || ctx.Err() != nil {
		return false
	}
	if _, err := q.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.opts.URL), ReceiptHandle: m.ReceiptHandle}); err != nil {
		// Read again when it comes back: the objects are remembered and skipped.
		q.health.Error(q.opts.Now(), fmt.Errorf("delete message %s: %w", id, err))
		return false
	}
	return true
}

// hide extends the message's visibility every half of it until ctx is done.
func (q *Queue) hide(ctx context.Context, m types.Message) {
	for q.opts.Wait(ctx, q.opts.Visibility/2) == nil {
		_, err := q.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(q.opts.URL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: int32(q.opts.Visibility / time.Second),
		})
		if err != nil && ctx.Err() == nil {
			q.opts.Logger.Warn("extend sqs message visibility", "message_id", aws.ToString(m.MessageId), "err", err)
		}
	}
}

// object reads one object with retries; it reports whether the object is done with (durable,
// or skipped).
func (q *Queue) object(ctx context.Context, msgID string, ref ObjectRef) bool {
	rt, ok := q.router.Route(ref)
	if !ok || ref.Size == 0 {
		return true
	}
	release, skip := q.claim(ctx, ref)
	if skip {
		return true
	}
	done, etag := q.read(ctx, msgID, ref, rt)
	release(done, etag)
	return done
}

// claim reports whether an object was read already (an S3 event and a CloudTrail notification
// may both name it, and a message may come again); else it waits while another message's
// handler reads it, and returns the function to call when done.
func (q *Queue) claim(ctx context.Context, ref ObjectRef) (release func(ok bool, etag string), skip bool) {
	key := ref.Bucket + "/" + ref.Key
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if etag, ok := q.done[key]; ok && (ref.ETag == "" || etag == "" || etag == ref.ETag) {
			return nil, true
		}
		ch, busy := q.inflight[key]
		if !busy {
			break
		}
		q.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		q.mu.Lock()
		if ctx.Err() != nil {
			return nil, true // not done, and the message is not deleted: see Handle
		}
	}
	ch := make(chan struct{})
	q.inflight[key] = ch
	return func(ok bool, etag string) {
		q.mu.Lock()
		defer q.mu.Unlock()
		delete(q.inflight, key)
		close(ch)
		if ok {
			q.remember(key, etag)
		}
	}, false
}

// read reads an object with retries; it reports whether it is durable, and its ETag.
func (q *Queue) read(ctx context.Context, msgID string, ref ObjectRef, rt Route) (bool, string) {
	file := batch.SourceFile{Bucket: ref.Bucket, Key: ref.Key}
	var appended int64 // records durable so far: a retry goes on after them
	var err error
	for attempt := 1; ; attempt++ {
		var st ObjectStats
		st, err = ReadObject(ctx, q.s3, ref, appended, q.opts.Split, nil, func(recs [][]byte) error {
			if err := q.append(ctx, rt.Name, file, recs); err != nil {
				return err
			}
			appended += int64(len(recs))
			return nil
		})
		if ref.ETag == "" {
			ref.ETag = st.ETag // a retry skips records of this very content
		}
		if err == nil {
			q.health.Success(q.opts.Now(), 1, st.Records)
			q.opts.Logger.Info("s3 object read", "bucket", ref.Bucket, "key", ref.Key, "records", st.Records)
			return true, ref.ETag
		}
		if ctx.Err() != nil {
			return false, ""
		}
		if q.opts.KMSKey != "" && (strings.Contains(err.Error(), "AccessDenied") || strings.Contains(err.Error(), "KMS")) {
			err = fmt.Errorf("%w (objects are encrypted with the KMS key %s: the credentials need kms:Decrypt on it)", err, q.opts.KMSKey)
		}
		q.health.Error(q.opts.Now(), err)
		q.opts.Logger.Warn("s3 object", "bucket", ref.Bucket, "key", ref.Key, "attempt", attempt, "err", err)
		if attempt >= q.opts.MaxAttempts {
			break
		}
		if q.opts.Wait(ctx, backoff(q.opts.Backoff, attempt)) != nil {
			return false, ""
		}
	}
	if q.errs != nil {
		se := ingest.SourceError{Time: q.opts.Now(), Source: rt.Source.Source, File: file, Err: err.Error(),
			Attempts: q.opts.MaxAttempts, MessageID: msgID}
		if rerr := q.errs.Record(ctx, se); rerr != nil {
			q.opts.Logger.Error("record source error", "err", rerr)
		}
	}
	return false, ""
}

// append appends records, waiting while the pipeline is busy.
func (q *Queue) append(ctx context.Context, name string, file batch.SourceFile, recs [][]byte) error {
	for busy := 1; ; busy++ {
		err := q.app.AppendObject(ctx, name, file, recs)
		if err == nil || !q.opts.Retryable(err) {
			return err
		}
		if werr := q.opts.Wait(ctx, backoff(100*time.Millisecond, busy)); werr != nil {
			return errors.Join(err, werr)
		}
	}
}

// remember records an object read; q.mu is held.
func (q *Queue) remember(key, etag string) {
	if _, ok := q.done[key]; ok {
		q.done[key] = etag
		return
	}
	q.done[key] = etag
	q.ring = append(q.ring, key)
	if len(q.ring) > doneMemory {
		delete(q.done, q.ring[0])
		q.ring = q.ring[1:]
	}
}
