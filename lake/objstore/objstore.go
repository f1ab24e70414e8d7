// Package objstore keeps a lake's files in S3 (or an S3-compatible store such as MinIO or
// moto): the lake's data files, which package lake uploads once they are finished, and its
// Iceberg metadata, which iceberg-go writes and reads through the store as its "s3" file IO.
//
// A location is a URL s3://bucket/key. A Store is one bucket and a prefix (the lake's root,
// s3://bucket/prefix); Open registers it, so that iceberg-go's tables whose files are in that
// bucket reach them with the Store's client, with its credentials, region, endpoint and
// addressing.
//
// Durability: S3 answers a PUT once the object is stored durably, so Put returning is the
// point from which a file may be referenced by a commit. Every object is put with a SHA-256
// checksum, which S3 verifies on receipt, and read back with checksum validation.
package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/ospreyhq/osprey/internal/awsx"
)

// Scheme is the scheme of a lake's locations in S3.
const Scheme = "s3"

// IsRemote reports whether a lake location is in an object store (s3://...) rather than a
// local directory.
func IsRemote(loc string) bool { return strings.HasPrefix(loc, Scheme+"://") }

// Parse splits a location s3://bucket/prefix into its bucket and prefix (without slashes at
// either end).
func Parse(loc string) (bucket, prefix string, err error) {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != Scheme || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", "", fmt.Errorf("%q is not an S3 location (want s3://bucket/prefix)", loc)
	}
	prefix = strings.Trim(u.Path, "/")
	for _, part := range strings.Split(prefix, "/") {
		if prefix != "" && (part == "" || part == "." || part == "..") {
			return "", "", fmt.Errorf("%q is not an S3 location: empty, . or .. path segment", loc)
		}
	}
	return u.Host, prefix, nil
}

// Store is a bucket and the prefix of a lake in it.
type Store struct {
	client         *s3.Client
	bucket, prefix string
}

var (
	storesMu sync.RWMutex
	stores   = map[string]*Store{} // by bucket, for iceberg-go's file IO
)

// Open returns the store of a location s3://bucket/prefix, with clients built from opts,
// after checking that the bucket can be reached. The store serves iceberg-go's file IO for
// the bucket from then on.
func Open(ctx context.Context, loc string, opts awsx.AWS) (*Store, error) {
	bucket, prefix, err := Parse(loc)
	if err != nil {
		return nil, err
	}
	cfg, err := opts.Config(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("lake %s: no AWS region: set AWS_REGION (or a profile's region, or region in the configuration's lakeS3)", loc)
	}
	s := &Store{client: opts.S3(cfg, true), bucket: bucket, prefix: prefix}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.client.HeadBucket(hctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return nil, fmt.Errorf("lake %s: bucket %s cannot be reached: %w", loc, bucket, err)
	}
	storesMu.Lock()
	stores[bucket] = s
	storesMu.Unlock()
	return s, nil
}

// Client returns the store's S3 client.
func (s *Store) Client() *s3.Client { return s.client }

// Root returns the store's location, s3://bucket/prefix.
func (s *Store) Root() string { return s.Location("") }

// Location returns the location of a path under the store's prefix (slash-separated).
func (s *Store) Location(path string) string {
	key := strings.Trim(s.prefix+"/"+strings.TrimLeft(path, "/"), "/")
	return Scheme + "://" + s.bucket + "/" + key
}

// key returns the key of a location in the store's bucket.
func (s *Store) key(loc string) (string, error) {
	rest, ok := strings.CutPrefix(loc, Scheme+"://"+s.bucket+"/")
	if !ok || rest == "" {
		return "", fmt.Errorf("%s is not in the bucket %s", loc, s.bucket)
	}
	return rest, nil
}

// Put uploads the local file at path to loc. When it returns nil the object is stored
// durably.
func (s *Store) Put(ctx context.Context, loc, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.put(ctx, loc, f)
}

// PutBytes stores b at loc.
func (s *Store) PutBytes(ctx context.Context, loc string, b []byte) error {
	return s.put(ctx, loc, bytes.NewReader(b))
}

func (s *Store) put(ctx context.Context, loc string, body io.ReadSeeker) error {
	key, err := s.key(loc)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), Body: body,
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", loc, err)
	}
	return nil
}

// Got is what Get read: the object's size and, when the store keeps one, its SHA-256
// checksum (base64, as S3 gives it).
type Got struct {
	Size   int64
	SHA256 string
}

// Get writes the object at loc to w. The SDK validates the object's checksum as it reads: a
// corrupt transfer is an error at the end.
func (s *Store) Get(ctx context.Context, loc string, w io.Writer) (Got, error) {
	key, err := s.key(loc)
	if err != nil {
		return Got{}, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return Got{}, s.pathError("open", loc, err)
	}
	defer out.Body.Close()
	n, err := io.Copy(w, out.Body)
	if err != nil {
		return Got{Size: n}, fmt.Errorf("get %s: %w", loc, err)
	}
	if out.ContentLength != nil && n != *out.ContentLength {
		return Got{Size: n}, fmt.Errorf("get %s: %d bytes of %d", loc, n, *out.ContentLength)
	}
	sum := aws.ToString(out.ChecksumSHA256)
	if out.ChecksumType == types.ChecksumTypeComposite {
		sum = "" // of the parts, not of the object
	}
	return Got{Size: n, SHA256: sum}, nil
}

// ReadFile returns the content of the object at loc.
func (s *Store) ReadFile(ctx context.Context, loc string) ([]byte, error) {
	var b bytes.Buffer
	if _, err := s.Get(ctx, loc, &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Object is an object listed by Walk.
type Object struct {
	Location string
	Size     int64
	Modified time.Time
}

// Walk calls fn for every object whose location starts with prefix (a location), in key
// order.
func (s *Store) Walk(ctx context.Context, prefix string, fn func(Object) error) error {
	key, err := s.key(prefix)
	if err != nil {
		return err
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(key)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			obj := Object{Location: Scheme + "://" + s.bucket + "/" + aws.ToString(o.Key), Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)}
			if err := fn(obj); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stat returns an object's size and modification time.
func (s *Store) Stat(ctx context.Context, loc string) (Object, error) {
	key, err := s.key(loc)
	if err != nil {
		return Object{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return Object{}, s.pathError("stat", loc, err)
	}
	return Object{Location: loc, Size: aws.ToInt64(out.ContentLength), Modified: aws.ToTime(out.LastModified)}, nil
}

// Delete removes objects; objects already gone are not an error. It returns the locations
// deleted.
func (s *Store) Delete(ctx context.Context, locs []string) ([]string, error) {
	var deleted []string
	var errs []error
	for len(locs) > 0 {
		batch := locs[:min(len(locs), 1000)] // DeleteObjects takes at most 1,000 keys
		locs = locs[len(batch):]
		objs := make([]types.ObjectIdentifier, 0, len(batch))
		byKey := map[string]string{}
		for _, loc := range batch {
			key, err := s.key(loc)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			objs = append(objs, types.ObjectIdentifier{Key: aws.String(key)})
			byKey[key] = loc
		}
		if len(objs) == 0 {
			continue
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(s.bucket),
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)}})
		if err != nil {
			errs = append(errs, fmt.Errorf("delete from %s: %w", s.bucket, err))
			continue
		}
		failed := map[string]bool{}
		for _, e := range out.Errors {
			failed[aws.ToString(e.Key)] = true
			errs = append(errs, fmt.Errorf("delete %s: %s", byKey[aws.ToString(e.Key)], aws.ToString(e.Message)))
		}
		for key, loc := range byKey {
			if !failed[key] {
				deleted = append(deleted, loc)
			}
		}
	}
	return deleted, errors.Join(errs...)
}

// pathError turns a not-found answer into an *fs.PathError of fs.ErrNotExist, as iceberg-go
// expects of its file IO.
func (s *Store) pathError(op, loc string, err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var api smithy.APIError
	if errors.As(err, &nsk) || errors.As(err, &nf) || errors.As(err, &api) && (api.ErrorCode() == "NoSuchKey" || api.ErrorCode() == "NotFound") {
		return &os.PathError{Op: op, Path: loc, Err: os.ErrNotExist}
	}
	return &os.PathError{Op: op, Path: loc, Err: err}
}

// storeOf returns the store opened for a location's bucket.
func storeOf(loc string) (*Store, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return nil, err
	}
	storesMu.RLock()
	s := stores[u.Host]
	storesMu.RUnlock()
	if s == nil {
		return nil, fmt.Errorf("no lake is open in the bucket of %s", loc)
	}
	return s, nil
}
