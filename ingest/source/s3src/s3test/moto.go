package s3test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Moto is a moto_server (the AWS emulator) started for a test on a free loopback port.
type Moto struct {
	URL string
}

// StartMoto starts moto_server for the test and stops it when the test ends. It skips the test,
// saying why, when moto_server is not installed.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not installed (pip install 'moto[server]'): skipping the test against it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start moto_server: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	// moto_server says when it listens; wait for that line (or for it to exit).
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var out []string
		for sc.Scan() {
			out = append(out, sc.Text())
			if strings.Contains(sc.Text(), "Running on") {
				ready <- nil
				for sc.Scan() { // keep draining, or moto blocks on a full pipe
				}
				return
			}
		}
		ready <- fmt.Errorf("moto_server exited: %s", strings.Join(out, "\n"))
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("moto_server did not start within a minute")
	}
	return &Moto{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
}

// Config returns an AWS configuration for clients of the server (give them BaseEndpoint URL).
func (m *Moto) Config() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}
}

// Notifications is S3 -> SNS -> SQS set up for real in moto: a bucket whose object-created
// events go to a topic, and a queue subscribed to the topic.
type Notifications struct {
	S3       *s3.Client
	SNS      *sns.Client
	SQS      *sqs.Client
	Bucket   string
	TopicARN string
	QueueURL string
}

// SetUpNotifications creates the bucket, topic, queue, subscription and bucket notification.
func SetUpNotifications(t testing.TB, m *Moto, bucket string) *Notifications {
	t.Helper()
	ctx := context.Background()
	cfg := m.Config()
	n := &Notifications{Bucket: bucket,
		S3:  s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(m.URL); o.UsePathStyle = true }),
		SNS: sns.NewFromConfig(cfg, func(o *sns.Options) { o.BaseEndpoint = aws.String(m.URL) }),
		SQS: sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(m.URL) }),
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := n.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	must(err)
	topic, err := n.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(bucket + "-notifications")})
	must(err)
	n.TopicARN = aws.ToString(topic.TopicArn)
	q, err := n.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(bucket + "-queue")})
	must(err)
	n.QueueURL = aws.ToString(q.QueueUrl)
	attrs, err := n.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	must(err)
	_, err = n.SNS.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])})
	must(err)
	_, err = n.S3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket: aws.String(bucket),
		NotificationConfiguration: &s3types.NotificationConfiguration{TopicConfigurations: []s3types.TopicConfiguration{{
			TopicArn: topic.TopicArn, Events: []s3types.Event{"s3:ObjectCreated:*"},
		}}},
	})
	must(err)
	return n
}

// Put uploads an object.
func (n *Notifications) Put(t testing.TB, key string, body []byte, kmsKey string) {
	t.Helper()
	in := &s3.PutObjectInput{Bucket: aws.String(n.Bucket), Key: aws.String(key), Body: bytes.NewReader(body)}
	if kmsKey != "" {
		in.ServerSideEncryption = s3types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(kmsKey)
	}
	if _, err := n.S3.PutObject(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// Pending returns the messages in the queue, visible or in flight.
func (n *Notifications) Pending(t testing.TB) int {
	t.Helper()
	attrs, err := n.SQS.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(n.QueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	var v, h int
	fmt.Sscan(attrs.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)], &v)
	fmt.Sscan(attrs.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)], &h)
	return v + h
}

// CreateBucket creates a bucket in the server.
func (m *Moto) CreateBucket(t testing.TB, bucket string) {
	t.Helper()
	c := s3.NewFromConfig(m.Config(), func(o *s3.Options) { o.BaseEndpoint = aws.String(m.URL); o.UsePathStyle = true })
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
}

// SetEnv points the AWS SDK's default configuration at the server for the rest of the test,
// as a user would with the AWS CLI's variables: credentials, region and endpoint.
func (m *Moto) SetEnv(t testing.TB) {
	t.Helper()
	for k, v := range m.Env() {
		t.Setenv(k, v)
	}
}

// Env returns the AWS CLI's variables that point clients at the server.
func (m *Moto) Env() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_SESSION_TOKEN": "",
		"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": m.URL, "AWS_PROFILE": "", "AWS_CONFIG_FILE": "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
	}
}

// Proxy is a reverse proxy on loopback in front of an S3 server that counts the GET requests
// of object keys, to tell what a client read.
type Proxy struct {
	URL  string
	mu   sync.Mutex
	gets map[string]int // by path (/bucket/key)
}

// NewProxy starts a counting proxy in front of the server at target for the test.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{gets: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An object GET (the Go SDK names its operation in x-id), not a listing.
		if q := r.URL.Query(); r.Method == http.MethodGet && (len(q) == 0 || len(q) == 1 && q.Get("x-id") == "GetObject") {
			p.mu.Lock()
			p.gets[r.URL.Path]++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Gets returns the GETs of objects whose path (/bucket/key) matches, by path, and resets the
// counts.
func (p *Proxy) Gets(match func(path string) bool) map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for path, n := range p.gets {
		if match(path) {
			out[path] = n
		}
	}
	p.gets = map[string]int{}
	return out
}

// Env returns the AWS CLI's variables that point clients at the proxy.
func (p *Proxy) Env() map[string]string {
	env := (&Moto{URL: p.URL}).Env()
	return env
}
