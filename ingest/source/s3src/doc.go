// Package s3src reads log objects from S3, as Panther's S3 sources do.
//
// Objects are named by S3 event notifications that an SQS queue receives, directly or through
// an SNS topic, or by CloudTrail's own SNS notifications (ParseNotification); or they are
// listed (Backfill). An object may be plain, gzip or zstd (sniffed from its bytes), JSON lines,
// text lines, or CloudTrail's {"Records":[...]} files, one per line or pretty-printed (Split).
// Each key is routed to log types by the longest matching prefix of its source (Router); a key
// under an excluded prefix, or outside the source's prefix filter, is skipped.
//
// Queue hands the records of each object to an Appender (the durable pipeline of osprey
// serve), with the object as their p_source_file, and deletes a message only once every object
// it names is durable. A failing object is retried with backoff; after MaxAttempts it is
// recorded (panther_monitor.source_errors) and the message is left to the queue's redrive
// policy. The message's visibility is extended while a large object is read.
package s3src
