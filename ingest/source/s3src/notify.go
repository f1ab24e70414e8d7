package s3src

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ObjectRef is an S3 object named by a notification or a listing.
type ObjectRef struct {
	Bucket string
	Key    string
	Size   int64  // -1 when the notification does not say
	ETag   string // without quotes; may be empty
}

// ErrNotNotification means an SQS message body is none of the notification formats.
var ErrNotNotification = errors.New("not an S3 or CloudTrail notification")

// ParseNotification returns the objects an SQS message body names. It reads:
//
//   - S3 event notifications ({"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":..},
//     "object":{"key":..,"size":..,"eTag":..}}}]}), whose keys are URL-encoded with '+' for a
//     space;
//   - the same wrapped in an SNS notification ({"Type":"Notification","Message":"<json>"}), as
//     an SQS queue subscribed to an SNS topic receives it (unless raw delivery is on);
//   - CloudTrail's SNS notification ({"s3Bucket":..,"s3ObjectKey":[..]}), plain or wrapped in
//     SNS; its keys are not encoded.
//
// A test event (s3:TestEvent, sent when notifications are configured) names no object. Events
// that do not create an object (deletions) are skipped.
func ParseNotification(body []byte) ([]ObjectRef, error) {
	var env struct {
		Type    string `json:"Type"`
		Message *string
		Event   string `json:"Event"`
		Records []s3Record
		Bucket  string   `json:"s3Bucket"`
		Keys    []string `json:"s3ObjectKey"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotNotification, err)
	}
	if env.Type == "Notification" && env.Message != nil {
		return ParseNotification([]byte(*env.Message))
	}
	switch {
	case env.Event == "s3:TestEvent":
		return nil, nil
	case env.Bucket != "":
		refs := make([]ObjectRef, 0, len(env.Keys))
		for _, k := range env.Keys {
			refs = append(refs, ObjectRef{Bucket: env.Bucket, Key: k, Size: -1})
		}
		return refs, nil
	case env.Records != nil:
		var refs []ObjectRef
		for _, r := range env.Records {
			if r.S3.Bucket.Name == "" || !strings.HasPrefix(r.EventName, "ObjectCreated:") && r.EventName != "" {
				continue
			}
			key, err := url.QueryUnescape(r.S3.Object.Key)
			if err != nil {
				return nil, fmt.Errorf("object key %q: %w", r.S3.Object.Key, err)
			}
			size := int64(-1)
			if r.S3.Object.Size != nil {
				size = *r.S3.Object.Size
			}
			refs = append(refs, ObjectRef{Bucket: r.S3.Bucket.Name, Key: key, Size: size, ETag: strings.Trim(r.S3.Object.ETag, `"`)})
		}
		return refs, nil
	}
	return nil, ErrNotNotification
}

// s3Record is a record of an S3 event notification.
type s3Record struct {
	EventName string `json:"eventName"`
	S3        struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key  string `json:"key"`
			Size *int64 `json:"size"`
			ETag string `json:"eTag"`
		} `json:"object"`
	} `json:"s3"`
}
