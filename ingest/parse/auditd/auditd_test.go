package auditd_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
)

var (
	builtinOnce sync.Once
	builtinLT   *logtypes.LogType
	builtinErr  error
)

// auditdType returns the built-in Linux.Auditd log type, looked up once: building the registry
// of every built-in schema takes a while.
func auditdType(t testing.TB) *logtypes.LogType {
	t.Helper()
	builtinOnce.Do(func() {
		r, err := logtypes.Builtin()
		if err != nil {
			builtinErr = err
			return
		}
		builtinLT, builtinErr = r.Lookup("Linux.Auditd")
	})
	if builtinErr != nil {
		t.Fatal(builtinErr)
	}
	return builtinLT
}

// auditdSchema returns the table schema of the built-in Linux.Auditd log type.
func auditdSchema(t testing.TB) *batch.Schema {
	t.Helper()
	return auditdType(t).Table
}

// newParser returns a fresh Linux.Auditd parser, made the way the registry makes it.
func newParser(t testing.TB) logtypes.Parser {
	t.Helper()
	p, err := auditdType(t).NewParser()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var parseTime = time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)

// rows parses records with one parser and one builder and returns the built rows as JSON
// objects, and the error of each record (nil when it made a row).
func rows(t testing.TB, recs ...string) ([]map[string]any, []error) {
	t.Helper()
	s := auditdSchema(t)
	p := newParser(t)
	b := batch.NewBuilder(s, batch.NewRowIDs())
	b.SetSource(batch.Source{ID: "src-1", Label: "test source"})
	b.SetParseTime(parseTime)
	var errs []error
	for _, r := range recs {
		b.Begin()
		if err := p.Parse([]byte(r), b); err != nil {
			b.Rollback()
			errs = append(errs, err)
			continue
		}
		errs = append(errs, nil)
		b.End()
	}
	rec := b.Build()
	defer rec.Release()
	return recordJSON(t, rec), errs
}

// row parses one record that must parse and returns its row.
func row(t testing.TB, rec string) map[string]any {
	t.Helper()
	got, errs := rows(t, rec)
	if errs[0] != nil {
		t.Fatalf("Parse(%q): %v", rec, errs[0])
	}
	if len(got) != 1 {
		t.Fatalf("Parse(%q): %d rows, want 1", rec, len(got))
	}
	return got[0]
}

func recordJSON(t testing.TB, rec arrow.RecordBatch) []map[string]any {
	t.Helper()
	data, err := rec.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return out
}

// checkColumns compares columns of a row with their wanted JSON text (`"0"`, `null`, ...).
func checkColumns(t *testing.T, r map[string]any, want map[string]string) {
	t.Helper()
	for k, w := range want {
		b, err := json.Marshal(r[k])
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != w {
			t.Errorf("%s = %s, want %s", k, b, w)
		}
	}
}

// extra decodes the extra_message_fields column of a row; nil when the column is NULL.
func extra(t *testing.T, r map[string]any) map[string]string {
	t.Helper()
	v := r["extra_message_fields"]
	if v == nil {
		return nil
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("extra_message_fields = %#v, want JSON text", v)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("extra_message_fields %q is not a JSON object of strings: %v", s, err)
	}
	if m == nil {
		t.Fatalf("extra_message_fields = %q, want an object or NULL", s)
	}
	return m
}

// checkExtra compares extra_message_fields with want exactly (nil want: the column is NULL).
func checkExtra(t *testing.T, r map[string]any, want map[string]string) {
	t.Helper()
	got := extra(t, r)
	if want == nil {
		if got != nil {
			t.Errorf("extra_message_fields = %v, want NULL", got)
		}
		return
	}
	if got == nil {
		t.Errorf("extra_message_fields = NULL, want %v", want)
		return
	}
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("extra_message_fields[%q] missing, want %q", k, w)
		} else if g != w {
			t.Errorf("extra_message_fields[%q] = %q, want %q", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("extra_message_fields[%q] = %q, not expected", k, g)
		}
	}
}

const userLogin = `type=USER_LOGIN msg=audit(1364481363.243:24287): pid=2650 uid=0 auid=4294967295 ses=4294967295 ` +
	`subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=login acct="alice" exe="/usr/sbin/sshd" ` +
	`hostname=bastion.example.com addr=203.0.113.7 terminal=ssh res=failed'`

func TestUserLogin(t *testing.T) {
	r := row(t, userLogin)
	checkColumns(t, r, map[string]string{
		"type":               `"USER_LOGIN"`,
		"timestamp":          `"2013-03-28T14:36:03.243Z"`,
		"p_event_time":       `"2013-03-28T14:36:03.243Z"`,
		"p_parse_time":       `"2026-11-22T13:00:00Z"`,
		"eventId":            `"24287"`,
		"pid":                `"2650"`,
		"uid":                `"0"`,
		"auid":               `"4294967295"`,
		"ses":                `"4294967295"`,
		"subj":               `"system_u:system_r:sshd_t:s0-s0:c0.c1023"`,
		"acct":               `"alice"`,
		"exe":                `"/usr/sbin/sshd"`,
		"hostname":           `"bastion.example.com"`,
		"addr":               `"203.0.113.7"`,
		"terminal":           `"ssh"`,
		"res":                `"failed"`,
		"result":             `null`,
		"success":            `null`,
		"p_log_type":         `"Linux.Auditd"`,
		"p_source_id":        `"src-1"`,
		"p_source_label":     `"test source"`,
		"p_any_ip_addresses": `["203.0.113.7"]`,
		"p_any_domain_names": `["bastion.example.com"]`,
		"p_any_actor_ids":    `["0"]`,
	})
	checkExtra(t, r, map[string]string{
		"op":       "login",
		"acct":     "alice",
		"exe":      "/usr/sbin/sshd",
		"hostname": "bastion.example.com",
		"addr":     "203.0.113.7",
		"terminal": "ssh",
		"res":      "failed",
	})
	if id, _ := r["p_row_id"].(string); len(id) != 32 {
		t.Errorf("p_row_id = %v, want 32 hex digits", r["p_row_id"])
	}
}

// Values are kept as auditd wrote them, unquoted, numbers and flags as text; hex numbers (arch,
// a SYSCALL record's a0..a3, saddr) stay hex. Hex-encoded text is decoded (see TestDecode).
func TestValuesAsWritten(t *testing.T) {
	f := func(line string, want map[string]string) {
		t.Helper()
		checkColumns(t, row(t, line), want)
	}
	f(`type=SYSCALL msg=audit(1700000000.001:77): arch=c000003e syscall=257 success=no exit=-13 `+
		`a0=ffffff9c a1=7ffd2c3b4e10 a2=0 a3=0 items=1 ppid=1200 pid=1201 auid=1000 uid=1000 gid=1000 `+
		`euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="my cat" `+
		`exe="/usr/bin/cat" subj=unconfined key="etc_watch"`, map[string]string{
		"arch":    `"c000003e"`,
		"syscall": `"257"`,
		"success": `"no"`,
		"exit":    `"-13"`,
		"a0":      `"ffffff9c"`,
		"a1":      `"7ffd2c3b4e10"`,
		"items":   `"1"`,
		"uid":     `"1000"`,
		"tty":     `"pts0"`,
		"comm":    `"my cat"`,
		"exe":     `"/usr/bin/cat"`,
		"subj":    `"unconfined"`,
		"key":     `"etc_watch"`,
		"result":  `null`,
	})
	f(`type=PROCTITLE msg=audit(1700000000.001:77): proctitle=7368002D63`, map[string]string{
		"type":      `"PROCTITLE"`,
		"proctitle": `"sh -c"`,
	})
	// A hex-encoded acct (a failed login of an invalid user) is decoded.
	f(`type=USER_LOGIN msg=audit(1700000000.002:78): pid=3 uid=0 auid=4294967295 ses=4294967295 `+
		`msg='op=login acct=28696E76616C6964207573657229 exe="/usr/sbin/sshd" hostname=? addr=192.0.2.1 terminal=sshd res=failed'`,
		map[string]string{
			"acct": `"(invalid user)"`,
			"exe":  `"/usr/sbin/sshd"`,
			"res":  `"failed"`,
		})
	f(`type=SOCKADDR msg=audit(1700000000.003:79): saddr=02000016C0000201000000000000000`, map[string]string{
		"saddr": `"02000016C0000201000000000000000"`,
	})
	f(`type=CWD msg=audit(1700000000.004:80): cwd="/home/alice/my dir"`, map[string]string{
		"cwd": `"/home/alice/my dir"`,
	})
	f(`type=EXECVE msg=audit(1700000000.005:81): argc=2 a0="ls" a1=2D6C`, map[string]string{
		"a0": `"ls"`,
		"a1": `"-l"`,
	})
}

// Values auditd uses for unset become NULL.
func TestUnsetValuesAreNull(t *testing.T) {
	r := row(t, `type=SYSCALL msg=audit(1700000000.001:77): arch=c000003e syscall=2 success=yes exit=3 `+
		`a0=1 a1=0 a2=0 a3=0 items=1 ppid=1 pid=2 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 `+
		`sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="x" exe="/x" subj=? key=(null) cwd="" cmd=`)
	checkColumns(t, r, map[string]string{
		"key":  `null`,
		"subj": `null`,
		"cwd":  `null`,
		"cmd":  `null`,
		"tty":  `"(none)"`, // not one of auditd's unset markers
	})
	checkExtra(t, r, nil)

	r = row(t, `type=USER_END msg=audit(1700000000.006:82): pid=10 uid=0 auid=1000 ses=5 `+
		`msg='op=PAM:session_close grantors=pam_unix acct="alice" exe="/usr/sbin/sshd" hostname=? addr=?, terminal=(null) res=success'`)
	checkColumns(t, r, map[string]string{
		"hostname":           `null`,
		"addr":               `null`,
		"terminal":           `null`,
		"acct":               `"alice"`,
		"res":                `"success"`,
		"p_any_ip_addresses": `null`,
		"p_any_domain_names": `null`,
		"p_any_actor_ids":    `["0"]`,
	})
	// The set pairs of msg are all in extra_message_fields. Whether unset ones are there as
	// well is not specified, so only the set ones are checked.
	got := extra(t, r)
	for k, v := range map[string]string{"op": "PAM:session_close", "grantors": "pam_unix", "acct": "alice", "exe": "/usr/sbin/sshd", "res": "success"} {
		if got[k] != v {
			t.Errorf("extra_message_fields[%q] = %q, want %q", k, got[k], v)
		}
	}
	for _, k := range []string{"hostname", "addr", "terminal"} {
		if v, ok := got[k]; ok && v != "?" && v != "?," && v != "(null)" {
			t.Errorf("extra_message_fields[%q] = %q, want it absent or as written", k, v)
		}
	}
}

func TestHeader(t *testing.T) {
	f := func(line, typ, ts, id string) {
		t.Helper()
		checkColumns(t, row(t, line), map[string]string{
			"type":         typ,
			"timestamp":    ts,
			"p_event_time": ts,
			"eventId":      id,
		})
	}
	f(`type=USER_LOGIN msg=audit(1364481363.243:24287): pid=1 uid=0`, `"USER_LOGIN"`, `"2013-03-28T14:36:03.243Z"`, `"24287"`)
	f(`type=SYSCALL msg=audit(1700000000.000:1): arch=c000003e`, `"SYSCALL"`, `"2023-11-14T22:13:20Z"`, `"1"`)
	f(`type=EOE msg=audit(1700000000.999:4294967295): `, `"EOE"`, `"2023-11-14T22:13:20.999Z"`, `"4294967295"`)
	f(`type=EOE msg=audit(1700000000.010:0):`, `"EOE"`, `"2023-11-14T22:13:20.01Z"`, `"0"`)
	f("  type=CWD msg=audit(1700000001.500:42): cwd=\"/\"\n", `"CWD"`, `"2023-11-14T22:13:21.5Z"`, `"42"`)
	f(`type=UNKNOWN[1334] msg=audit(1700000002.250:43): a=b`, `"UNKNOWN[1334]"`, `"2023-11-14T22:13:22.25Z"`, `"43"`)
}

func TestMessageFields(t *testing.T) {
	// Keys without a column (op, grantors, unit, old-auid, ...) are in extra_message_fields
	// only; keys with one fill it and are in extra_message_fields too.
	s := auditdSchema(t)
	for _, k := range []string{"op", "grantors", "unit", "old-auid", "item", "nametype", "rdev"} {
		if s.FieldIndex(k) >= 0 {
			t.Fatalf("the test assumes %s has no column", k)
		}
	}
	r := row(t, `type=SERVICE_START msg=audit(1700000003.100:44): pid=1 uid=0 auid=4294967295 ses=4294967295 `+
		`subj=system_u:system_r:init_t:s0 msg='unit=sshd comm="systemd" exe="/usr/lib/systemd/systemd" hostname=? addr=? terminal=? res=success'`)
	checkColumns(t, r, map[string]string{
		"comm": `"systemd"`,
		"exe":  `"/usr/lib/systemd/systemd"`,
		"res":  `"success"`,
		"subj": `"system_u:system_r:init_t:s0"`,
	})
	got := extra(t, r)
	for k, v := range map[string]string{"unit": "sshd", "comm": "systemd", "exe": "/usr/lib/systemd/systemd", "res": "success"} {
		if got[k] != v {
			t.Errorf("extra_message_fields[%q] = %q, want %q", k, got[k], v)
		}
	}
	for _, k := range []string{"pid", "uid", "auid", "ses", "subj"} {
		if _, ok := got[k]; ok {
			t.Errorf("extra_message_fields has %s, a key outside msg with a column", k)
		}
	}

	// Keys outside msg without a column go to extra_message_fields.
	r = row(t, `type=PATH msg=audit(1700000003.200:45): item=0 name="/etc/shadow" inode=1234 dev=fd:00 `+
		`mode=0100640 ouid=0 ogid=42 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0`)
	checkColumns(t, r, map[string]string{
		"name":  `"/etc/shadow"`,
		"inode": `"1234"`,
		"dev":   `"fd:00"`,
		"mode":  `"0100640"`,
		"ouid":  `"0"`,
		"ogid":  `"42"`,
	})
	checkExtra(t, r, map[string]string{"item": "0", "rdev": "00:00", "nametype": "NORMAL"})

	// LOGIN with old-auid: old-auid and old-ses have no column.
	r = row(t, `type=LOGIN msg=audit(1700000003.300:46): pid=900 uid=0 subj=unconfined old-auid=4294967295 auid=1000 tty=(none) old-ses=4294967295 ses=7 res=1`)
	checkColumns(t, r, map[string]string{"auid": `"1000"`, "ses": `"7"`, "res": `"1"`, "pid": `"900"`})
	checkExtra(t, r, map[string]string{"old-auid": "4294967295", "old-ses": "4294967295"})

	// No msg pairs and no unknown keys: extra_message_fields is NULL.
	r = row(t, `type=CWD msg=audit(1700000003.400:47): cwd="/root"`)
	checkColumns(t, r, map[string]string{"cwd": `"/root"`})
	checkExtra(t, r, nil)
}

// A value outside msg wins over the same key inside msg, in either order.
func TestOutsideMsgWins(t *testing.T) {
	f := func(line string) {
		t.Helper()
		r := row(t, line)
		checkColumns(t, r, map[string]string{
			"uid":             `"1000"`,
			"terminal":        `"pts/0"`,
			"p_any_actor_ids": `["1000"]`,
		})
		checkExtra(t, r, map[string]string{"op": "x", "uid": "0", "terminal": "pts/0"})
	}
	f(`type=USER_CMD msg=audit(1700000004.000:50): pid=5 uid=1000 ses=2 msg='op=x uid=0 terminal=pts/0'`)
	f(`type=USER_CMD msg=audit(1700000004.000:50): msg='op=x uid=0 terminal=pts/0' pid=5 uid=1000 ses=2`)
	// An unset value outside msg does not hide the one inside.
	r := row(t, `type=USER_CMD msg=audit(1700000004.000:51): pid=5 uid=? msg='uid=42'`)
	checkColumns(t, r, map[string]string{"uid": `"42"`})
}

func TestIndicators(t *testing.T) {
	f := func(line string, want map[string]string) {
		t.Helper()
		checkColumns(t, row(t, line), want)
	}
	login := func(uid, hostname, addr string) string {
		return `type=USER_LOGIN msg=audit(1700000005.000:60): pid=7 uid=` + uid + ` auid=1000 ses=9 ` +
			`msg='op=login id=1000 exe="/usr/sbin/sshd" hostname=` + hostname + ` addr=` + addr + ` terminal=ssh res=success'`
	}
	f(login("0", "client.example.org", "198.51.100.20"), map[string]string{
		"p_any_ip_addresses": `["198.51.100.20"]`,
		"p_any_domain_names": `["client.example.org"]`,
		"p_any_actor_ids":    `["0"]`,
	})
	// An IP hostname is an IP address; duplicates are removed.
	f(login("0", "198.51.100.20", "198.51.100.20"), map[string]string{
		"p_any_ip_addresses": `["198.51.100.20"]`,
		"p_any_domain_names": `null`,
	})
	// Sorted.
	f(login("1000", "192.0.2.200", "10.1.2.3"), map[string]string{
		"p_any_ip_addresses": `["10.1.2.3","192.0.2.200"]`,
		"p_any_domain_names": `null`,
		"p_any_actor_ids":    `["1000"]`,
	})
	f(login("0", "2001:db8::1", "2001:db8::2"), map[string]string{
		"p_any_ip_addresses": `["2001:db8::1","2001:db8::2"]`,
	})
	// hostname=? adds nothing.
	f(login("0", "?", "203.0.113.9"), map[string]string{
		"hostname":           `null`,
		"p_any_ip_addresses": `["203.0.113.9"]`,
		"p_any_domain_names": `null`,
	})
	f(login("0", "?", "?"), map[string]string{
		"p_any_ip_addresses": `null`,
		"p_any_domain_names": `null`,
		"p_any_actor_ids":    `["0"]`,
	})
}

func TestNodePrefix(t *testing.T) {
	r := row(t, `node=web01 type=SYSCALL msg=audit(1700000006.000:70): arch=c000003e syscall=59 success=yes exit=0 pid=3 uid=0 comm="id" exe="/usr/bin/id"`)
	checkColumns(t, r, map[string]string{
		"type":    `"SYSCALL"`,
		"eventId": `"70"`,
		"syscall": `"59"`,
		"comm":    `"id"`,
	})
	checkExtra(t, r, map[string]string{"node": "web01"})

	r = row(t, `node=db-2.example.com type=USER_LOGIN msg=audit(1700000006.100:71): pid=8 uid=0 msg='op=login acct="bob" res=success'`)
	checkColumns(t, r, map[string]string{"type": `"USER_LOGIN"`, "acct": `"bob"`, "eventId": `"71"`})
	checkExtra(t, r, map[string]string{"node": "db-2.example.com", "op": "login", "acct": "bob", "res": "success"})
}

// withoutVolatile drops the columns that differ between two parses of the same record.
func withoutVolatile(r map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range r {
		if k != "p_row_id" {
			out[k] = v
		}
	}
	return out
}

func TestFluentBitJSON(t *testing.T) {
	lines := []string{
		userLogin,
		`node=web01 type=SYSCALL msg=audit(1700000006.000:70): arch=c000003e syscall=59 success=yes exit=0 comm="id" exe="/usr/bin/id" key=(null)`,
		`type=AVC msg=audit(1700000100.500:9611): avc:  denied  { read } for  pid=9611 comm="httpd" name="x" tclass=file`,
	}
	for _, line := range lines {
		for _, log := range []string{line, line + "\n"} {
			rec, err := json.Marshal(map[string]any{"date": json.Number("1700000000.1"), "log": log})
			if err != nil {
				t.Fatal(err)
			}
			got, errs := rows(t, line, string(rec))
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("errors %v parsing %s", errs, rec)
			}
			raw, js := withoutVolatile(got[0]), withoutVolatile(got[1])
			a, _ := json.Marshal(raw)
			b, _ := json.Marshal(js)
			if string(a) != string(b) {
				t.Errorf("JSON record %s\n gives %s\n raw line gives %s", rec, b, a)
			}
		}
	}
}

func TestAVC(t *testing.T) {
	r := row(t, `type=AVC msg=audit(1700000100.500:9611): avc:  denied  { read write } for  pid=9611 comm="httpd" `+
		`name="index.html" dev="dm-0" ino=4242 scontext=system_u:system_r:httpd_t:s0 `+
		`tcontext=unconfined_u:object_r:user_home_t:s0 tclass=file permissive=0`)
	checkColumns(t, r, map[string]string{
		"type":    `"AVC"`,
		"eventId": `"9611"`,
		"pid":     `"9611"`,
		"comm":    `"httpd"`,
		"name":    `"index.html"`,
		"dev":     `"dm-0"`,
	})
	checkExtra(t, r, map[string]string{
		"seresult":   "denied",
		"seperms":    "read,write",
		"ino":        "4242",
		"scontext":   "system_u:system_r:httpd_t:s0",
		"tcontext":   "unconfined_u:object_r:user_home_t:s0",
		"tclass":     "file",
		"permissive": "0",
	})

	// An AppArmor AVC is plain key=value pairs.
	r = row(t, `type=AVC msg=audit(1700000100.600:9612): apparmor="DENIED" operation="open" profile="/usr/sbin/ntpd" name="/etc/x" pid=77 comm="ntpd" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`)
	checkColumns(t, r, map[string]string{"pid": `"77"`, "comm": `"ntpd"`, "name": `"/etc/x"`, "fsuid": `"0"`})
	got := extra(t, r)
	if got["apparmor"] != "DENIED" || got["operation"] != "open" {
		t.Errorf("extra_message_fields = %v", got)
	}
}

func TestUnknownRecordType(t *testing.T) {
	r := row(t, `type=MY_NEW_TYPE msg=audit(1.2:3): a=b`)
	checkColumns(t, r, map[string]string{
		"type":    `"MY_NEW_TYPE"`,
		"eventId": `"3"`,
	})
	checkExtra(t, r, map[string]string{"a": "b"})

	r = row(t, `type=FANCY_FUTURE msg=audit(1700000200.123:99): pid=4 uid=0 exe="/bin/x" shiny=yes`)
	checkColumns(t, r, map[string]string{
		"type":      `"FANCY_FUTURE"`,
		"timestamp": `"2023-11-14T22:16:40.123Z"`,
		"eventId":   `"99"`,
		"pid":       `"4"`,
		"exe":       `"/bin/x"`,
	})
	checkExtra(t, r, map[string]string{"shiny": "yes"})
}

func TestErrors(t *testing.T) {
	bad := []string{
		``,
		`   `,
		`msg=audit(1700000000.001:1): pid=1 uid=0`,
		`hello world`,
		`type=SYSCALL arch=c000003e syscall=59`,
		`type=SYSCALL`,
		`type=SYSCALL msg=audit(abc): x=1`,
		`type=SYSCALL msg=audit(1700000000.001:xyz): x=1`,
		`type=SYSCALL msg=audit(1700000000.001:1 x=1`,
		`type=SYSCALL msg=hello`,
		`node=web01`,
		`node=web01 hello`,
		`{"date":1}`,
		`{"date":1,"log":42}`,
		`{"date":1,"log":"hello"}`,
		`{"log":`,
		`{not json}`,
	}
	got, errs := rows(t, bad...)
	for i, err := range errs {
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", bad[i])
		}
	}
	if len(got) != 0 {
		t.Errorf("%d rows built from bad records, want 0: %v", len(got), got)
	}
}

func TestRollbackLeavesNoTrace(t *testing.T) {
	s := auditdSchema(t)
	p := newParser(t)
	b := batch.NewBuilder(s, batch.NewRowIDs())
	b.SetParseTime(parseTime)
	recs := []struct {
		line string
		ok   bool
	}{
		{`type=USER_LOGIN msg=audit(1700000300.100:501): pid=11 uid=0 auid=1000 ses=1 msg='op=login acct="alice" hostname=a.example.com addr=192.0.2.1 terminal=ssh res=success'`, true},
		{`type=USER_LOGIN msg=audit(abc): pid=99 uid=99 msg='op=evil acct="mallory" hostname=evil.example.net addr=192.0.2.99 res=success'`, false},
		{`type=USER_LOGIN msg=audit(1700000300.200:502): pid=12 uid=1000 auid=1000 ses=2 msg='op=login acct="bob" addr=192.0.2.2 terminal=ssh res=failed'`, true},
	}
	for i, r := range recs {
		b.Begin()
		err := p.Parse([]byte(r.line), b)
		if (err == nil) != r.ok {
			t.Fatalf("record %d: Parse error %v, want ok=%v", i, err, r.ok)
		}
		if err != nil {
			b.Rollback()
		} else {
			b.End()
		}
	}
	if b.Rows() != 2 {
		t.Fatalf("Rows() = %d, want 2", b.Rows())
	}
	rec := b.Build()
	defer rec.Release()
	got := recordJSON(t, rec)
	if len(got) != 2 {
		t.Fatalf("%d rows, want 2", len(got))
	}
	checkColumns(t, got[0], map[string]string{
		"eventId":            `"501"`,
		"timestamp":          `"2023-11-14T22:18:20.1Z"`,
		"pid":                `"11"`,
		"uid":                `"0"`,
		"acct":               `"alice"`,
		"hostname":           `"a.example.com"`,
		"res":                `"success"`,
		"p_any_ip_addresses": `["192.0.2.1"]`,
		"p_any_domain_names": `["a.example.com"]`,
		"p_any_actor_ids":    `["0"]`,
	})
	checkColumns(t, got[1], map[string]string{
		"eventId":            `"502"`,
		"timestamp":          `"2023-11-14T22:18:20.2Z"`,
		"pid":                `"12"`,
		"uid":                `"1000"`,
		"acct":               `"bob"`,
		"hostname":           `null`,
		"res":                `"failed"`,
		"p_any_ip_addresses": `["192.0.2.2"]`,
		"p_any_domain_names": `null`,
		"p_any_actor_ids":    `["1000"]`,
	})
	checkExtra(t, got[1], map[string]string{"op": "login", "acct": "bob", "addr": "192.0.2.2", "terminal": "ssh", "res": "failed"})
}

// Each row keeps its own eventId when one parser parses several records.
func TestEventIDAcrossRecords(t *testing.T) {
	lines := []string{
		`type=USER_AUTH msg=audit(1700000400.000:100): pid=1 uid=0 msg='op=PAM:authentication acct="root" res=success'`,
		`type=USER_AUTH msg=audit(1700000400.000:101): pid=1 uid=0 msg='op=PAM:authentication acct="root" res=success'`,
		`type=CWD msg=audit(1700000400.000:102): cwd="/"`,
		`type=PATH msg=audit(1700000400.000:103): item=0 name="/" nametype=NORMAL`,
		`type=USER_AUTH msg=audit(1700000400.000:12345678): pid=1 uid=0 msg='op=PAM:authentication acct="root" res=success'`,
	}
	got, errs := rows(t, lines...)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Parse(%q): %v", lines[i], err)
		}
	}
	for i, want := range []string{"100", "101", "102", "103", "12345678"} {
		if got[i]["eventId"] != want {
			t.Errorf("row %d: eventId = %q, want %q", i, got[i]["eventId"], want)
		}
	}
}

// Old PAM records close msg with "(hostname=..., addr=..., terminal=... res=...)". auparse's
// normalization, which the parser mirrors, drops the parenthesis and auditd's ", " separators
// are not part of the values.
func TestOldPAMFormat(t *testing.T) {
	r := row(t, `type=CRED_DISP msg=audit(1300000000.123:800): user pid=4242 uid=0 auid=500 `+
		`msg='PAM: setcred acct="root" : exe="/bin/su" (hostname=?, addr=?, terminal=pts/0 res=success)'`)
	checkColumns(t, r, map[string]string{
		"type":     `"CRED_DISP"`,
		"acct":     `"root"`,
		"exe":      `"/bin/su"`,
		"hostname": `null`,
		"addr":     `null`,
		"terminal": `"pts/0"`,
		"res":      `"success"`,
	})

	r = row(t, `type=USER_START msg=audit(1300000000.456:801): user pid=4243 uid=0 auid=500 `+
		`msg='PAM: session open acct="root" : exe="/usr/sbin/sshd" (hostname=client.example.com, addr=192.0.2.5, terminal=ssh res=success)'`)
	checkColumns(t, r, map[string]string{
		"type":               `"USER_START"`,
		"terminal":           `"ssh"`,
		"hostname":           `"client.example.com"`,
		"addr":               `"192.0.2.5"`,
		"res":                `"success"`,
		"p_any_ip_addresses": `["192.0.2.5"]`,
		"p_any_domain_names": `["client.example.com"]`,
	})
}

var headerRE = regexp.MustCompile(`^(?:node=\S+ )?type=(\S+) msg=audit\((\d+)\.(\d{3}):(\d+)\)`)

// corpusFiles returns the real audit logs of the shared corpora (go-libaudit's test data, OTRF),
// or skips the test when they are absent.
func corpusFiles(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "..", "shared", "corpora", "auditd")
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skipf("no corpus in %s", dir)
	}
	return files
}

// Every line of the shared auditd corpus parses, to a row with the header's type, time and serial.
func TestCorpus(t *testing.T) {
	files := corpusFiles(t)
	s := auditdSchema(t)
	total := 0
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			p := newParser(t)
			b := batch.NewBuilder(s, batch.NewRowIDs())
			b.SetParseTime(parseTime)
			type header struct{ line, typ, ts, id string }
			var want []header
			sc := bufio.NewScanner(bytes.NewReader(data))
			sc.Buffer(nil, 1<<20)
			n, skipped := 0, 0
			for sc.Scan() {
				n++
				line := sc.Text()
				if strings.TrimSpace(line) == "" {
					continue // not a record
				}
				m := headerRE.FindStringSubmatch(line)
				if m == nil {
					// A line without msg=audit(time:serial) has no timestamp (a required
					// column) and no serial: it is not a record (go-libaudit rejects it too,
					// e.g. "type=UNKNOWN[1329] msg=?"), so it must be an error, as a
					// malformed header is.
					b.Begin()
					if err := p.Parse([]byte(line), b); err == nil {
						b.End()
						t.Errorf("line %d: no audit header, yet Parse succeeded: %.120s", n, line)
						want = append(want, header{fmt.Sprintf("line %d", n), "?", "?", "?"})
					} else {
						b.Rollback()
						t.Logf("line %d: no audit header, rejected as it should: %v: %.120s", n, err, line)
						skipped++
					}
					continue
				}
				sec, _ := strconv.ParseInt(m[2], 10, 64)
				ms, _ := strconv.ParseInt(m[3], 10, 64)
				ts := time.UnixMilli(sec*1000 + ms).UTC().Format(time.RFC3339Nano)
				b.Begin()
				if err := p.Parse([]byte(line), b); err != nil {
					b.Rollback()
					t.Errorf("line %d: %v: %.120s", n, err, line)
					continue
				}
				b.End()
				want = append(want, header{fmt.Sprintf("line %d", n), m[1], ts, m[4]})
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			rec := b.Build()
			defer rec.Release()
			got := recordJSON(t, rec)
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i, w := range want {
				r := got[i]
				if r["type"] != w.typ {
					t.Errorf("%s: type = %v, want %q", w.line, r["type"], w.typ)
				}
				if r["eventId"] != w.id {
					t.Errorf("%s: eventId = %q, want %q", w.line, r["eventId"], w.id)
				}
				if r["timestamp"] != w.ts || r["p_event_time"] != w.ts {
					t.Errorf("%s: timestamp = %v, p_event_time = %v, want %s", w.line, r["timestamp"], r["p_event_time"], w.ts)
				}
			}
			t.Logf("%s: %d lines parsed (%d lines without an audit header rejected)", filepath.Base(file), len(want), skipped)
			total += len(want)
		})
	}
	t.Logf("%d lines parsed in %d files", total, len(files))
}
