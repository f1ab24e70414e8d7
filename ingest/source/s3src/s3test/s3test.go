// Package s3test is a small in-process S3 for tests: the path-style calls the S3 sources make
// (ListObjectsV2, GetObject with If-Match, HeadObject) and PutObject and CreateBucket, served
// over HTTP on 127.0.0.1 so that the real AWS SDK client talks to it. Objects can be added
// directly, and reads made to fail, to test retries.
package s3test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Server is an in-process S3.
type Server struct {
	*httptest.Server
	mu      sync.Mutex
	buckets map[string]map[string]*object
	fail    map[string]int // bucket/key -> GETs still to fail
	gets    map[string]int // bucket/key -> GETs served
}

type object struct {
	data     []byte
	etag     string
	modified time.Time
}

// New starts a server; Close stops it.
func New() *Server {
	s := &Server{buckets: map[string]map[string]*object{}, fail: map[string]int{}, gets: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Client returns an S3 client of the server (path style, static test credentials, and no
// retries of its own: the SDK's would sleep, and hide the failures a test makes).
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Retryer:      aws.NopRetryer{},
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// Put stores an object (creating its bucket) last modified at t (now when zero).
func (s *Server) Put(bucket, key string, data []byte, t time.Time) {
	if t.IsZero() {
		t = time.Now()
	}
	sum := md5.Sum(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[bucket] == nil {
		s.buckets[bucket] = map[string]*object{}
	}
	s.buckets[bucket][key] = &object{data: data, etag: hex.EncodeToString(sum[:]), modified: t.UTC().Truncate(time.Second)}
}

// FailGets makes the next n GETs of an object fail with 500 Internal Error.
func (s *Server) FailGets(bucket, key string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[bucket+"/"+key] = n
}

// Gets returns how many GETs of an object were served (failed ones included).
func (s *Server) Gets(bucket, key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[bucket+"/"+key]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	objs, ok := s.buckets[bucket]
	switch {
	case r.Method == http.MethodPut && key == "":
		if !ok {
			s.buckets[bucket] = map[string]*object{}
		}
		return
	case !ok:
		s3Error(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		return
	case r.Method == http.MethodGet && key == "" && r.URL.Query().Get("list-type") == "2":
		s.list(w, r, bucket, objs)
		return
	case r.Method == http.MethodPut:
		data, err := io.ReadAll(r.Body)
		if err != nil {
			s3Error(w, http.StatusBadRequest, "IncompleteBody", err.Error())
			return
		}
		sum := md5.Sum(data)
		o := &object{data: data, etag: hex.EncodeToString(sum[:]), modified: time.Now().UTC().Truncate(time.Second)}
		objs[key] = o
		w.Header().Set("ETag", `"`+o.etag+`"`)
		return
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		id := bucket + "/" + key
		if r.Method == http.MethodGet {
			s.gets[id]++
			if s.fail[id] > 0 {
				s.fail[id]--
				s3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
				return
			}
		}
		o, ok := objs[key]
		if !ok {
			s3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
			return
		}
		if m := r.Header.Get("If-Match"); m != "" && strings.Trim(m, `"`) != o.etag {
			s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
			return
		}
		w.Header().Set("ETag", `"`+o.etag+`"`)
		w.Header().Set("Last-Modified", o.modified.Format(http.TimeFormat))
		w.Header().Set("Content-Length", strconv.Itoa(len(o.data)))
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.Method == http.MethodGet {
			w.Write(o.data)
		}
		return
	}
	s3Error(w, http.StatusNotImplemented, "NotImplemented", r.Method+" "+r.URL.String())
}

type listResult struct {
	XMLName               xml.Name   `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string     `xml:"Name"`
	Prefix                string     `xml:"Prefix"`
	KeyCount              int        `xml:"KeyCount"`
	MaxKeys               int        `xml:"MaxKeys"`
	IsTruncated           bool       `xml:"IsTruncated"`
	Contents              []listItem `xml:"Contents"`
	ContinuationToken     string     `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string     `xml:"NextContinuationToken,omitempty"`
}

type listItem struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int    `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

// list answers ListObjectsV2; pages hold max-keys keys (default 1000), the continuation token
// is the last key of the previous page.
func (s *Server) list(w http.ResponseWriter, r *http.Request, bucket string, objs map[string]*object) {
	q := r.URL.Query()
	prefix, after := q.Get("prefix"), q.Get("continuation-token")
	max := 1000
	if v, err := strconv.Atoi(q.Get("max-keys")); err == nil && v > 0 {
		max = v
	}
	var keys []string
	for k := range objs {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	res := listResult{Name: bucket, Prefix: prefix, MaxKeys: max, ContinuationToken: after}
	if len(keys) > max {
		keys = keys[:max]
		res.IsTruncated = true
		res.NextContinuationToken = keys[len(keys)-1]
	}
	for _, k := range keys {
		o := objs[k]
		res.Contents = append(res.Contents, listItem{Key: k, LastModified: o.modified.Format("2006-01-02T15:04:05.000Z"),
			ETag: `"` + o.etag + `"`, Size: len(o.data), StorageClass: "STANDARD"})
	}
	res.KeyCount = len(res.Contents)
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprint(w, xml.Header)
	xml.NewEncoder(w).Encode(res)
}

func s3Error(w http.ResponseWriter, code int, s3code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(code)
	fmt.Fprintf(w, "%s<Error><Code>%s</Code><Message>%s</Message></Error>", xml.Header, s3code, msg)
}
