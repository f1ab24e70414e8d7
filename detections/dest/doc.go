// Package dest sends alerts to their destinations: JSON lines to a file or stdout, a generic
// webhook and Slack, through a durable outbox.
//
// # Configuration
//
// osprey.yml lists destinations; a rule names those it alerts in OutputIds (none: all of them).
//
//	destinations:
//	  - id: alerts-file            # required, unique: what rules name in OutputIds
//	    type: file                 # file, stdout, webhook or slack
//	    path: /var/log/osprey/alerts.jsonl
//	  - id: console
//	    type: stdout
//	  - id: soar
//	    type: webhook
//	    url: https://soar.example.com/hooks/osprey
//	    secretEnv: SOAR_HMAC_KEY   # or secret: (inline) or secretFile: (a file); signs requests
//	    headers: {Authorization: Bearer abc123}
//	    maxAttempts: 10            # default 10; then the dead-letter file
//	    timeout: 10s               # per request; default 10s
//	  - id: security-slack
//	    type: slack
//	    url: https://hooks.slack.com/services/T000/B000/XXXX
//	    minSeverity: High          # alerts of rules without OutputIds: High and Critical only
//
// minSeverity filters only the alerts routed to every destination: a rule that names a
// destination in its OutputIds reaches it at any severity (as in Panther).
//
// # What is sent
//
// File and stdout destinations write each alert as one line of JSON (alert.Alert); a file is
// opened in append mode for each alert and synced after the write. A webhook receives a POST
// of the same JSON with these headers:
//
//	Content-Type: application/json
//	X-Osprey-Delivery: <delivery id>       the same on every attempt: drop duplicates by it
//	X-Osprey-Timestamp: <Unix seconds>     of this attempt
//	X-Osprey-Signature: sha256=<hex>       when the destination has a secret
//
// The signature is the hex HMAC-SHA256, keyed by the secret, of the timestamp, a dot and the
// body exactly as received: HMAC(secret, timestamp + "." + body). Receivers check it with
// [Verify] (or the same computation) and should reject timestamps more than a few minutes
// from their clock. A Slack destination posts an incoming-webhook message: text for the
// notification, and blocks with the severity and title, the rule, the event count, the first
// and last event times, the alert id, the description and the runbook.
//
// A 2xx answer is success. 408, 429, 5xx and network errors (timeouts too) are tried again;
// any other answer (redirects included) fails the delivery at once. A Retry-After on a 429
// or 503 is obeyed, up to OutboxOptions.MaxRetryAfter.
//
// # Outbox
//
// [Outbox.Enqueue] writes one delivery file per destination of the alert and syncs it before it
// returns, then wakes the sender: alerts are sent as soon as they are enqueued. Each
// destination has its own sender goroutine, so a slow or failing destination holds back no
// other; a destination's deliveries go in enqueue order, each tried until it succeeds or is
// dead-lettered before the next one. Between attempts the sender waits an exponential backoff
// with jitter (OutboxOptions.BackoffBase doubling up to BackoffCap). The directory:
//
//	<dir>/lock                              flock: one Outbox per directory
//	<dir>/pending/<destination>/<seq>.json  a delivery: id, attempts, last error, the alert
//	<dir>/dead-letter.jsonl                 deliveries given up on, one DeadLetter per line
//
// <seq> is a 20-digit sequence number in enqueue order. A delivery file is written to
// <seq>.json.<random>.tmp, synced, renamed and its directory synced (package durable); after a
// failed attempt it is replaced the same way with the new attempt count, so attempts count
// across restarts. It is deleted once sent or dead-lettered. [OpenOutbox] queues the files a
// previous process left, and removes temporary files.
//
// The delivery id is the alert id and the destination id, "<alertId>/<destination>", and for
// an alert updated after it was created (escalated) "/<updateTime in Unix µs>" too
// ([DeliveryID]): enqueuing the same version of an alert again gives the same delivery
// (skipped if still pending), and a new version gives a new one.
//
// # Guarantees
//
// At least once, with a stable delivery id: a delivery is on disk before Enqueue returns and is
// deleted only after the destination accepted it or it was dead-lettered. It is sent exactly
// once unless the process stops between the destination's success and the deletion of the
// file, or while a request is in flight (Close abandons it), or the destination took the
// request but its answer was lost (a timeout): then it is sent again with the same delivery
// id, which webhook receivers can use to drop the duplicate. A file or stdout destination can
// get the same line twice in those cases, and Slack shows the message twice.
//
// # Dead letters
//
// After its destination's maxAttempts (or at once, on a permanent failure) a delivery is
// appended to dead-letter.jsonl as a [DeadLetter]: the delivery id, the destination, the
// attempts, the last error, when it was enqueued and dead-lettered, and the alert. It is
// logged at error level. To send dead letters again, once the destination is fixed: move the
// file aside, call [Outbox.Replay] on the moved file (each delivery goes back to the
// destination it failed at, with its delivery id and its attempts reset), then delete it.
// [ReadDeadLetters] reads the file.
package dest
