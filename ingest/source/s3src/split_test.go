package s3src

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestParseNotification(t *testing.T) {
	f := func(name, body string, want []ObjectRef, wantErr error) {
		t.Helper()
		got, err := ParseNotification([]byte(body))
		if !errors.Is(err, wantErr) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", name, got, err, want, wantErr)
		}
	}
	s3event := `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"logs"},"object":{"key":"AWSLogs/a+b%2Bc%3D.json.gz","size":1024,"eTag":"\"abc\""}}},` +
		`{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"logs"},"object":{"key":"gone"}}}]}`
	want := []ObjectRef{{Bucket: "logs", Key: "AWSLogs/a b+c=.json.gz", Size: 1024, ETag: "abc"}}
	f("s3 event", s3event, want, nil)
	sns, _ := jsonString(s3event)
	f("s3 event in sns", `{"Type":"Notification","MessageId":"x","Message":`+sns+`}`, want, nil)
	f("test event", `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-01-01T00:00:00Z","Bucket":"logs"}`, nil, nil)
	test, _ := jsonString(`{"Service":"Amazon S3","Event":"s3:TestEvent"}`)
	f("test event in sns", `{"Type":"Notification","Message":`+test+`}`, nil, nil)
	f("cloudtrail", `{"s3Bucket":"trail","s3ObjectKey":["a/b c.json.gz","d+e.json.gz"]}`,
		[]ObjectRef{{Bucket: "trail", Key: "a/b c.json.gz", Size: -1}, {Bucket: "trail", Key: "d+e.json.gz", Size: -1}}, nil)
	f("not json", `hello`, nil, ErrNotNotification)
	f("other json", `{"hello":"world"}`, nil, ErrNotNotification)

	// CloudTrail's own notification, as its processing library's test holds it.
	body, err := os.ReadFile("../../../../shared/corpora/cloudtrail/awslib/SQSMessageBody")
	if err != nil {
		t.Skip("corpora absent:", err)
	}
	refs, err := ParseNotification(body)
	if err != nil || len(refs) != 2 || refs[0].Bucket != "my-test-bucket" || !strings.HasSuffix(refs[0].Key, "_996mpJdKNLd1Yvzl.json.gz") {
		t.Errorf("CloudTrail SNS notification: %+v, %v", refs, err)
	}
}

func jsonString(s string) (string, error) {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String(), nil
}

func split(t *testing.T, body []byte, opts SplitOptions) ([]string, int, error) {
	t.Helper()
	var got []string
	chunks := 0
	_, err := Split(bytes.NewReader(body), opts, func(recs [][]byte) error {
		chunks++
		for _, r := range recs {
			got = append(got, string(r))
		}
		return nil
	})
	return got, chunks, err
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zst(b []byte) []byte {
	w, _ := zstd.NewWriter(nil)
	return w.EncodeAll(b, nil)
}

func TestSplit(t *testing.T) {
	f := func(name, body string, want ...string) {
		t.Helper()
		for _, enc := range []struct {
			name string
			fn   func([]byte) []byte
		}{{"plain", func(b []byte) []byte { return b }}, {"gzip", gz}, {"zstd", zst}} {
			got, _, err := split(t, enc.fn([]byte(body)), SplitOptions{})
			if err != nil || !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("%s (%s): got %q, %v; want %q", name, enc.name, got, err, want)
			}
		}
	}
	f("json lines", "{\"a\":1}\n\n{\"a\":2}\r\n{\"a\":3}", `{"a":1}`, `{"a":2}`, `{"a":3}`)
	f("text lines", "Jan 1 host sshd: hello\nsecond line\n", "Jan 1 host sshd: hello", "second line")
	f("cloudtrail line", `{"Records":[{"eventName":"A"},{"eventName":"B"}]}`+"\n"+`{"Records":[{"eventName":"C"}]}`+"\n",
		`{"eventName":"A"}`, `{"eventName":"B"}`, `{"eventName":"C"}`)
	f("cloudtrail document", "{\n  \"Records\": [\n    {\"eventName\": \"A\"},\n    {\"eventName\": \"B\"}\n  ]\n}\n",
		`{"eventName": "A"}`, `{"eventName": "B"}`)
	f("json array document", "[\n {\"a\":1},\n {\"a\":2}\n]", `{"a":1}`, `{"a":2}`)
	f("pretty objects", "{\n \"a\": 1\n}\n{\n \"a\": 2\n}\n", "{\n \"a\": 1\n}", "{\n \"a\": 2\n}")
	f("empty", "")
	f("envelope word in a plain record", `{"note":"Records"}`, `{"note":"Records"}`)

	// Chunks: records are handed on in chunks of about ChunkSize bytes.
	var body bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&body, `{"i":%d,"pad":"%s"}`+"\n", i, strings.Repeat("x", 100))
	}
	got, chunks, err := split(t, gz(body.Bytes()), SplitOptions{ChunkSize: 10 << 10})
	if err != nil || len(got) != 1000 || chunks < 10 || got[999] != fmt.Sprintf(`{"i":999,"pad":"%s"}`, strings.Repeat("x", 100)) {
		t.Errorf("chunked: %d records in %d chunks, %v", len(got), chunks, err)
	}

	// A line longer than any record keeps its head; the lines after it are intact.
	long := "A" + strings.Repeat("b", 100<<10)
	got, _, err = split(t, []byte("first\n"+long+"\nlast\n"), SplitOptions{ChunkSize: 16 << 10, MaxRecord: 32 << 10})
	if err != nil || len(got) != 3 || got[0] != "first" || len(got[1]) != 32<<10+1 || got[2] != "last" {
		t.Errorf("long line: %d records, %v", len(got), err)
	}

	// A truncated gzip stream is an error, after what it held.
	z := gz(body.Bytes())
	got, _, err = split(t, z[:len(z)/2], SplitOptions{})
	if err == nil || !strings.Contains(err.Error(), "truncated") || len(got) == 0 {
		t.Errorf("truncated gzip: %d records, %v", len(got), err)
	}

	// A document over the limit is refused.
	if _, _, err := split(t, []byte("[\n"+strings.Repeat(`{"a":1},`, 100)+"{}]"), SplitOptions{MaxDocument: 100}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("large document: %v", err)
	}
}

// TestSplitCorpus splits the CloudTrail files of the CloudTrail processing library's tests.
func TestSplitCorpus(t *testing.T) {
	dir := "../../../../shared/corpora/cloudtrail/awslib/"
	for _, tc := range []struct {
		file string
		want int
	}{
		{"SerializerTestFile.json", 6},
		{"SerializerTestFileCompact.json.gz", 6},
	} {
		body, err := os.ReadFile(dir + tc.file)
		if err != nil {
			t.Skip("corpora absent:", err)
		}
		got, _, err := split(t, body, SplitOptions{})
		if err != nil || len(got) != tc.want || !strings.Contains(got[0], `"eventVersion"`) {
			t.Errorf("%s: %d records (want %d), %v", tc.file, len(got), tc.want, err)
		}
	}
}
