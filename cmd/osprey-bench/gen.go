package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// auditGen generates realistic, varied Panther.Audit events: a few hundred actors (users and API
// tokens), a long tail of action names, nested and free-form actionParams, errors on failures,
// X-Forwarded-For chains, both timestamp layouts Panther emits, and event times that advance over
// a window with some late arrivals, as a real audit log shipped in batches does.
type auditGen struct {
	rng    *rand.Rand
	start  time.Time
	span   time.Duration
	actors []actor
	buf    []byte
	last   time.Time // the event time of the last event
}

type actor struct {
	id, name, typ, email, role string
	ip                         string
	agent                      string
}

var actionNames = []string{
	"LIST_ALERTS", "GET_ALERT", "UPDATE_ALERT_STATUS", "LIST_DETECTIONS", "GET_DETECTION",
	"CREATE_DETECTION", "UPDATE_DETECTION", "DELETE_DETECTION", "LIST_DATA_LAKE_DATABASES",
	"EXECUTE_DATA_LAKE_QUERY", "GET_DATA_LAKE_QUERY", "CANCEL_DATA_LAKE_QUERY", "LIST_LOG_SOURCES",
	"CREATE_LOG_SOURCE", "UPDATE_LOG_SOURCE", "DELETE_LOG_SOURCE", "GET_GENERAL_SETTINGS",
	"UPDATE_GENERAL_SETTINGS", "GET_SAML_SETTINGS", "UPDATE_SAML_SETTINGS", "CREATE_USER",
	"UPDATE_USER", "DELETE_USER", "LIST_USERS", "CREATE_USER_ROLE", "UPDATE_USER_ROLE",
	"DELETE_USER_ROLE", "CREATE_API_TOKEN", "DELETE_API_TOKEN", "ROTATE_API_TOKEN",
	"SIGN_IN", "SIGN_OUT", "UPLOAD_DETECTIONS", "CREATE_DESTINATION", "UPDATE_DESTINATION",
	"DELETE_DESTINATION", "RUN_DETECTION_TESTS", "CREATE_SAVED_QUERY", "DELETE_SAVED_QUERY",
}

// weights make reads far more common than writes, as in a real deployment.
var actionWeights = func() []int {
	w := make([]int, len(actionNames))
	for i, n := range actionNames {
		switch {
		case len(n) > 4 && (n[:4] == "LIST" || n[:3] == "GET"):
			w[i] = 30
		case n == "EXECUTE_DATA_LAKE_QUERY" || n == "GET_DATA_LAKE_QUERY":
			w[i] = 40
		case n[:6] == "DELETE":
			w[i] = 2
		default:
			w[i] = 6
		}
	}
	return w
}()

var firstNames = []string{"homer", "marge", "bart", "lisa", "maggie", "ned", "moe", "apu", "seymour", "edna", "waylon", "monty", "lenny", "carl", "milhouse", "nelson", "patty", "selma"}
var agents = []string{
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
	"panther_analysis_tool/0.52.3 python-requests/2.32.3",
	"slackbot",
	"Go-http-client/1.1",
}
var logTypes = []string{"AWS.CloudTrail", "Okta.SystemLog", "GitHub.Audit", "Linux.Auditd", "Panther.Audit", "Zeek.DNS", "GSuite.Reports"}

func newAuditGen(seed uint64, end time.Time, span time.Duration) *auditGen {
	g := &auditGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), start: end.Add(-span), span: span}
	for i := 0; i < 300; i++ {
		first := firstNames[g.rng.IntN(len(firstNames))]
		a := actor{typ: "USER", role: fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", g.rng.Uint32(), g.rng.IntN(1<<16), g.rng.IntN(1<<12), g.rng.IntN(1<<12), g.rng.Uint64()&(1<<48-1))}
		a.email = fmt.Sprintf("%s.%d@springfield.gov", first, i)
		if i%10 == 9 {
			a.typ, a.id, a.name = "TOKEN", fmt.Sprintf("%08x-%04x-4000-8000-%012x", g.rng.Uint32(), i, g.rng.Uint64()&(1<<48-1)), fmt.Sprintf("ci-token-%d", i)
			a.email = ""
		} else if i%3 == 0 {
			a.id, a.name = "PantherSSO_"+a.email, a.email
		} else {
			a.id, a.name = strconv.Itoa(1000000+i*37), first+" "+strconv.Itoa(i)
		}
		a.ip = fmt.Sprintf("%d.%d.%d.%d", 1+g.rng.IntN(223), g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254))
		if i%17 == 0 {
			a.ip = fmt.Sprintf("2001:db8:%x::%x", g.rng.IntN(1<<16), g.rng.IntN(1<<16))
		}
		a.agent = agents[g.rng.IntN(len(agents))]
		g.actors = append(g.actors, a)
	}
	return g
}

func (g *auditGen) pickAction() string {
	total := 0
	for _, w := range actionWeights {
		total += w
	}
	n := g.rng.IntN(total)
	for i, w := range actionWeights {
		if n < w {
			return actionNames[i]
		}
		n -= w
	}
	return actionNames[0]
}

// event appends one JSON event for position i of n to g.buf.
func (g *auditGen) event(i, n int) []byte {
	r := g.rng
	b := g.buf[:0]
	// Event time advances with i across the span; 2% of events arrive hours late.
	t := g.start.Add(time.Duration(float64(g.span) * float64(i) / float64(n)))
	t = t.Add(time.Duration(r.IntN(60_000)) * time.Millisecond)
	if r.IntN(50) == 0 {
		t = t.Add(-time.Duration(1+r.IntN(48)) * time.Hour)
	}
	g.last = t
	a := g.actors[r.IntN(len(g.actors))]
	action := g.pickAction()
	result := "SUCCEEDED"
	if p := r.IntN(100); p < 4 {
		result = "FAILED"
	} else if p < 5 {
		result = "PARTIALLY_FAILED"
	}
	b = append(b, `{"actionName":"`...)
	b = append(b, action...)
	b = append(b, `","actionDescription":"`...)
	b = append(b, describe(action)...)
	b = append(b, `","actionResult":"`...)
	b = append(b, result...)
	b = append(b, `","actionParams":{"dynamic":{"input":`...)
	b = g.params(b, action)
	b = append(b, `},"static":{}}`...)
	if r.IntN(4) == 0 {
		b = append(b, `,"actionDetails":{"requestId":"`...)
		b = appendHex(b, r.Uint64())
		b = append(b, `","durationMs":`...)
		b = strconv.AppendInt(b, int64(r.IntN(5000)), 10)
		b = append(b, `}`...)
	}
	b = append(b, `,"actor":{"id":"`...)
	b = append(b, a.id...)
	b = append(b, `","type":"`...)
	b = append(b, a.typ...)
	b = append(b, `","name":"`...)
	b = append(b, a.name...)
	b = append(b, `"`...)
	if a.email != "" {
		b = append(b, `,"attributes":{"email":"`...)
		b = append(b, a.email...)
		b = append(b, `","emailVerified":`...)
		b = strconv.AppendBool(b, r.IntN(5) != 0)
		b = append(b, `,"roleId":"`...)
		b = append(b, a.role...)
		b = append(b, `"}`...)
	}
	b = append(b, `}`...)
	if result != "SUCCEEDED" {
		b = append(b, `,"errors":[{"message":"`...)
		b = append(b, []string{"permission denied", "validation failed: name already exists", "internal error, please retry", "rate limit exceeded"}[r.IntN(4)]...)
		b = append(b, `"}]`...)
	} else if r.IntN(3) == 0 {
		b = append(b, `,"errors":null`...)
	}
	b = append(b, `,"sourceIP":"`...)
	b = append(b, a.ip...)
	b = append(b, `"`...)
	if r.IntN(3) == 0 {
		b = append(b, `,"XForwardedFor":["`...)
		b = append(b, a.ip...)
		b = append(b, `","10.`...)
		b = strconv.AppendInt(b, int64(r.IntN(256)), 10)
		b = append(b, `.0.`...)
		b = strconv.AppendInt(b, int64(1+r.IntN(254)), 10)
		b = append(b, `"]`...)
	}
	b = append(b, `,"userAgent":"`...)
	b = append(b, a.agent...)
	b = append(b, `","timestamp":"`...)
	if r.IntN(2) == 0 {
		b = t.UTC().AppendFormat(b, "2006-01-02 15:04:05.000000000")
	} else {
		b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	}
	b = append(b, `","pantherVersion":"1.`...)
	b = strconv.AppendInt(b, int64(100+r.IntN(20)), 10)
	b = append(b, `.`...)
	b = strconv.AppendInt(b, int64(r.IntN(30)), 10)
	b = append(b, "\"}\n"...)
	g.buf = b
	return b
}

func describe(action string) string {
	switch action {
	case "DELETE_DETECTION":
		return "Deletes one or more detections"
	case "EXECUTE_DATA_LAKE_QUERY":
		return "Executes a query against the data lake"
	case "UPDATE_USER":
		return "Updates the information for a user"
	case "SIGN_IN":
		return "Signs a user in"
	}
	return "Panther API operation"
}

func (g *auditGen) params(b []byte, action string) []byte {
	r := g.rng
	switch action {
	case "DELETE_DETECTION", "CREATE_DETECTION", "UPDATE_DETECTION", "GET_DETECTION":
		b = append(b, `{"detections":[`...)
		for k := range 1 + r.IntN(3) {
			if k > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":"`...)
			b = append(b, logTypes[r.IntN(len(logTypes))]...)
			b = append(b, `.Rule`...)
			b = strconv.AppendInt(b, int64(r.IntN(500)), 10)
			b = append(b, `"}`...)
		}
		return append(b, `]}`...)
	case "EXECUTE_DATA_LAKE_QUERY":
		b = append(b, `{"sql":"SELECT * FROM panther_logs.`...)
		b = append(b, []string{"aws_cloudtrail", "okta_systemlog", "panther_audit"}[r.IntN(3)]...)
		b = append(b, ` WHERE p_occurs_since('`...)
		b = strconv.AppendInt(b, int64(1+r.IntN(48)), 10)
		b = append(b, ` hours') LIMIT `...)
		b = strconv.AppendInt(b, int64(10*(1+r.IntN(100))), 10)
		return append(b, `","databaseName":"panther_logs"}`...)
	case "UPDATE_USER", "CREATE_USER":
		a := g.actors[r.IntN(len(g.actors))]
		b = append(b, `{"email":"`...)
		b = append(b, a.email...)
		b = append(b, `","role":{"kind":"ID","value":"(redacted)"},"id":"`...)
		b = append(b, a.id...)
		return append(b, `"}`...)
	case "CREATE_USER_ROLE", "UPDATE_USER_ROLE":
		return append(b, `{"name":"Analysts","logTypeAccessKind":"DENY_ALL","permissions":["AlertRead","DataAnalyticsRead","SummaryRead"]}`...)
	case "LIST_ALERTS":
		b = append(b, `{"pageSize":`...)
		b = strconv.AppendInt(b, int64(25*(1+r.IntN(4))), 10)
		b = append(b, `,"severities":["HIGH","CRITICAL"],"status":["OPEN"]}`...)
		return b
	}
	return append(b, `{}`...)
}

func appendHex(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		b = append(b, digits[(v>>uint(i))&0xf])
	}
	return b
}

// writeAudit writes events to w until at least size bytes are written, returning the event count.
func writeAudit(w io.Writer, size int64, seed uint64, end time.Time, span time.Duration) (int, error) {
	g := newAuditGen(seed, end, span)
	bw := bufio.NewWriterSize(w, 1<<20)
	// Estimate the count first so that event times spread over the whole span.
	n := int(size / 640)
	var written int64
	i := 0
	for ; written < size; i++ {
		ev := g.event(min(i, n-1), n)
		if _, err := bw.Write(ev); err != nil {
			return i, err
		}
		written += int64(len(ev))
	}
	return i, bw.Flush()
}

// writeAuditOrdered writes n events spread over span before end in an order: "arrival" (the
// generator's: time order with 2% late arrivals), "sorted" (strictly by event time) or
// "random" (shuffled with a fixed seed).
func writeAuditOrdered(w io.Writer, n int, seed uint64, end time.Time, span time.Duration, order string) error {
	g := newAuditGen(seed, end, span)
	type ev struct {
		t    time.Time
		line []byte
	}
	evs := make([]ev, n)
	for i := range n {
		line := g.event(i, n)
		evs[i] = ev{t: g.last, line: append([]byte(nil), line...)}
	}
	switch order {
	case "arrival":
	case "sorted":
		slices.SortStableFunc(evs, func(a, b ev) int { return a.t.Compare(b.t) })
	case "random":
		r := rand.New(rand.NewPCG(seed, 42))
		r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	default:
		return fmt.Errorf("order %q: want arrival, sorted or random", order)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	for _, e := range evs {
		if _, err := bw.Write(e.line); err != nil {
			return err
		}
	}
	return bw.Flush()
}
