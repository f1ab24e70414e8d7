package s3src

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseNotification reads arbitrary SQS message bodies. It never panics; a body it reads
// names objects with a bucket and an ETag without quotes, and the same body wrapped in an SNS
// notification names the same objects.
func FuzzParseNotification(f *testing.F) {
	for _, s := range []string{
		`{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"logs/a+b%2Fc.json.gz","size":12,"eTag":"\"abc\""}}}]}`,
		`{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`,
		`{"Type":"Notification","Message":"{\"s3Bucket\":\"ct\",\"s3ObjectKey\":[\"AWSLogs/1/x.json.gz\"]}"}`,
		`{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}`,
		`{"Records":[{"s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`,
		`[]`, `null`, `{"Records":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		refs, err := ParseNotification(body)
		if err != nil {
			if !errors.Is(err, ErrNotNotification) && !strings.HasPrefix(err.Error(), "object key ") {
				t.Fatalf("error %q is neither ErrNotNotification nor about a key", err)
			}
			return
		}
		for _, r := range refs {
			if r.Bucket == "" || r.Size < -1 || strings.HasPrefix(r.ETag, `"`) || strings.HasSuffix(r.ETag, `"`) {
				t.Errorf("object %+v", r)
			}
		}
		if !utf8.Valid(body) {
			return // SNS carries text
		}
		msg, err := json.Marshal(string(body))
		if err != nil {
			t.Fatal(err)
		}
		wrapped, err := ParseNotification([]byte(`{"Type":"Notification","Message":` + string(msg) + `}`))
		if err != nil {
			t.Fatalf("wrapped in SNS: %v", err)
		}
		if !reflect.DeepEqual(wrapped, refs) {
			t.Errorf("wrapped in SNS: %+v, plain %+v", wrapped, refs)
		}
	})
}
