package auditd_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// Values auditd hex-encodes are decoded, as ausearch -i shows them; others are left alone.
func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name  string
		line  string
		cols  map[string]string // wanted columns, as JSON
		extra map[string]string // wanted keys of extra_message_fields (others are not checked)
	}{
		{
			name:  "hex acct in msg",
			line:  `type=USER_LOGIN msg=audit(1795158064.001:1305): pid=8801 uid=0 auid=4294967295 ses=4294967295 msg='op=login acct=61646D696E exe="/usr/sbin/sshd" hostname=? addr=203.0.113.45 terminal=sshd res=failed'`,
			cols:  map[string]string{"acct": `"admin"`, "exe": `"/usr/sbin/sshd"`},
			extra: map[string]string{"acct": "admin"},
		},
		{
			name:  "a quoted value is not decoded",
			line:  `type=USER_LOGIN msg=audit(1700000000.000:1): pid=1 uid=0 msg='op=login acct="61646D696E" exe="414243" res=failed'`,
			cols:  map[string]string{"acct": `"61646D696E"`, "exe": `"414243"`},
			extra: map[string]string{"acct": "61646D696E"},
		},
		{
			name: "(null) is null",
			line: `type=PATH msg=audit(1700000000.000:2): item=0 name=(null) inode=1 nametype=UNKNOWN`,
			cols: map[string]string{"name": `null`, "inode": `"1"`},
		},
		{
			name: "proctitle's NUL separators become spaces",
			line: `type=PROCTITLE msg=audit(1795172402.880:1702): proctitle=7368002D630069643B756E616D65202D61`,
			cols: map[string]string{"proctitle": `"sh -c id;uname -a"`},
		},
		{
			name: "trailing NULs are dropped",
			line: `type=PROCTITLE msg=audit(1700000000.000:3): proctitle=7368002D630000`,
			cols: map[string]string{"proctitle": `"sh -c"`},
		},
		{
			name: "only NULs is null",
			line: `type=PROCTITLE msg=audit(1700000000.000:4): proctitle=0000`,
			cols: map[string]string{"proctitle": `null`},
		},
		{
			name: "a quoted proctitle",
			line: `type=PROCTITLE msg=audit(1700000000.000:5): proctitle="/usr/sbin/sshd"`,
			cols: map[string]string{"proctitle": `"/usr/sbin/sshd"`},
		},
		{
			name: "odd length, non-hex and lower-case values are left alone",
			line: `type=SYSCALL msg=audit(1700000000.000:6): arch=c000003e syscall=59 success=yes exit=0 pid=1 uid=0 comm=GHIJ exe=ABC cwd=6c73`,
			cols: map[string]string{"comm": `"GHIJ"`, "exe": `"ABC"`, "cwd": `"6c73"`},
		},
		{
			name: "exe and comm of a SYSCALL record; its a0..a3 are registers, left as hex",
			line: `type=SYSCALL msg=audit(1700000000.000:7): arch=c000003e syscall=59 success=yes exit=0 a0=ABCD a1=7FFD a2=0 a3=8 items=2 pid=2 uid=0 comm=6D7920636174 exe=2F746D702F6D7920636174 key="x"`,
			cols: map[string]string{"comm": `"my cat"`, "exe": `"/tmp/my cat"`, "a0": `"ABCD"`, "a1": `"7FFD"`, "arch": `"c000003e"`},
		},
		{
			name:  "EXECVE arguments a0..aN",
			line:  `type=EXECVE msg=audit(1700000000.000:8): argc=6 a0="ls" a1=2D6C61 a2="/tmp" a3=2F746D702F6D7920646972 a4=2D2D636F6C6F723D6175746F a5=414243`,
			cols:  map[string]string{"a0": `"ls"`, "a1": `"-la"`, "a2": `"/tmp"`, "a3": `"/tmp/my dir"`},
			extra: map[string]string{"argc": "6", "a4": "--color=auto", "a5": "ABC"},
		},
		{
			name:  "an EXECVE argument written in pieces",
			line:  `type=EXECVE msg=audit(1700000000.000:9): argc=2 a0="echo" a1_len=11 a1[0]=68656C6C6F a1[1]=20776F726C64`,
			cols:  map[string]string{"a0": `"echo"`, "a1": `"hello world"`},
			extra: map[string]string{"argc": "2", "a1_len": "11"},
		},
		{
			name: "cwd",
			line: `type=CWD msg=audit(1700000000.000:10): cwd=2F686F6D652F616C6963652F6D7920646972`,
			cols: map[string]string{"cwd": `"/home/alice/my dir"`},
		},
		{
			name: "name of a PATH record",
			line: `type=PATH msg=audit(1700000000.000:11): item=0 name=2F746D702F612062 inode=2 nametype=CREATE`,
			cols: map[string]string{"name": `"/tmp/a b"`},
		},
		{
			name:  "cmd of a USER_CMD record, inside msg",
			line:  `type=USER_CMD msg=audit(1795161630.012:1420): pid=9188 uid=1001 auid=1001 ses=17 msg='cwd="/home/deploy" cmd=7669202F6574632F7375646F657273 terminal=pts/0 res=success'`,
			cols:  map[string]string{"cmd": `"vi /etc/sudoers"`, "cwd": `"/home/deploy"`},
			extra: map[string]string{"cmd": "vi /etc/sudoers"},
		},
		{
			name: "data of a TTY record keeps its control characters",
			line: `type=TTY msg=audit(1700000000.000:12): tty pid=3 uid=0 auid=0 ses=1 major=136 minor=0 comm="bash" data=6C730D`,
			cols: map[string]string{"data": `"ls\r"`, "comm": `"bash"`},
		},
		{
			name:  "ocomm and path",
			line:  `type=OBJ_PID msg=audit(1700000000.000:13): opid=4 oauid=0 ouid=0 oses=1 ocomm=6D792070726F63 path=2F612062`,
			cols:  map[string]string{"ocomm": `"my proc"`, "path": `"/a b"`},
			extra: nil,
		},
		{
			name: "bytes that are not UTF-8",
			line: `type=PATH msg=audit(1700000000.000:14): item=0 name=2F746D702FFF nametype=NORMAL`,
			cols: map[string]string{"name": `"/tmp/�"`},
		},
		{
			name: "keys that are never encoded are left alone",
			line: `type=SOCKADDR msg=audit(1700000000.000:15): saddr=0200001600000000`,
			cols: map[string]string{"saddr": `"0200001600000000"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := row(t, tc.line)
			checkColumns(t, r, tc.cols)
			got := extra(t, r)
			for k, w := range tc.extra {
				if got[k] != w {
					t.Errorf("extra_message_fields[%q] = %q, want %q", k, got[k], w)
				}
			}
		})
	}
}

// The enriched format: after a 0x1d byte, auditd's interpretation of some values, upper-case keys.
// They are in extra_message_fields under their own keys; the columns keep the raw values.
func TestEnriched(t *testing.T) {
	for _, tc := range []struct {
		name  string
		line  string
		cols  map[string]string
		extra map[string]string // exactly
	}{
		{
			name: "SYSCALL",
			line: `type=SYSCALL msg=audit(1700000500.123:900): arch=c000003e syscall=59 success=yes exit=0 a0=55 a1=56 a2=57 a3=8 items=2 ppid=2 pid=3 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="id" exe="/usr/bin/id" key="exec"` +
				"\x1d" + `ARCH=x86_64 SYSCALL=execve AUID="alice" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" EGID="root" SGID="root" FSGID="root"`,
			cols: map[string]string{"arch": `"c000003e"`, "syscall": `"59"`, "auid": `"1000"`, "uid": `"0"`, "key": `"exec"`, "exe": `"/usr/bin/id"`},
			extra: map[string]string{"ARCH": "x86_64", "SYSCALL": "execve", "AUID": "alice", "UID": "root", "GID": "root",
				"EUID": "root", "SUID": "root", "FSUID": "root", "EGID": "root", "SGID": "root", "FSGID": "root"},
		},
		{
			name: "USER_LOGIN, after msg",
			line: `type=USER_LOGIN msg=audit(1700000500.200:901): pid=7 uid=0 auid=1000 ses=3 msg='op=login id=1000 exe="/usr/sbin/sshd" hostname=? addr=192.0.2.7 terminal=/dev/pts/0 res=success'` +
				"\x1d" + `UID="root" AUID="alice" ID="alice"`,
			cols: map[string]string{"uid": `"0"`, "auid": `"1000"`, "id": `"1000"`, "res": `"success"`, "addr": `"192.0.2.7"`},
			extra: map[string]string{"op": "login", "id": "1000", "exe": "/usr/sbin/sshd", "addr": "192.0.2.7", "terminal": "/dev/pts/0", "res": "success",
				"UID": "root", "AUID": "alice", "ID": "alice"},
		},
		{
			name:  "SOCKADDR, a braced value with spaces",
			line:  `type=SOCKADDR msg=audit(1700000500.300:902): saddr=020000357F0000350000000000000000` + "\x1d" + `SADDR={ saddr_fam=inet laddr=127.0.0.53 lport=53 }`,
			cols:  map[string]string{"saddr": `"020000357F0000350000000000000000"`},
			extra: map[string]string{"SADDR": "{ saddr_fam=inet laddr=127.0.0.53 lport=53 }"},
		},
		{
			name:  "PATH, then a hex name decoded",
			line:  `type=PATH msg=audit(1700000500.400:903): item=0 name=2F746D702F612062 inode=5 dev=fd:00 mode=0100644 ouid=1000 ogid=1000 rdev=00:00 nametype=CREATE cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0` + "\x1d" + `OUID="alice" OGID="alice"`,
			cols:  map[string]string{"name": `"/tmp/a b"`, "ouid": `"1000"`},
			extra: map[string]string{"item": "0", "rdev": "00:00", "nametype": "CREATE", "cap_frootid": "0", "OUID": "alice", "OGID": "alice"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := row(t, tc.line)
			checkColumns(t, r, tc.cols)
			checkExtra(t, r, tc.extra)
		})
	}
}

// rowValue returns the value a row holds for an audit key: its column, or else its key of
// extra_message_fields; ok is false when it holds none.
func rowValue(t *testing.T, r map[string]any, key string) (string, bool) {
	t.Helper()
	if v, ok := r[key].(string); ok && key != "extra_message_fields" {
		return v, true
	}
	v, ok := extra(t, r)[key]
	return v, ok
}

var (
	upperHex = regexp.MustCompile(`^(?:[0-9A-F]{2})+$`)
	argKey   = regexp.MustCompile(`^a[0-9]+$`)
)

// In the real logs of the corpus, every value go-libaudit's auparse decodes is decoded the same
// way, and no value of a key auditd encodes is left as hex.
func TestCorpusDecoded(t *testing.T) {
	files := corpusFiles(t)
	encoded := []string{"acct", "exe", "comm", "cmd", "proctitle", "cwd", "name", "data", "ocomm", "path"}
	compared, decoded := 0, 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if headerRE.MatchString(sc.Text()) {
				lines = append(lines, sc.Text())
			}
		}
		got, errs := rows(t, lines...)
		if len(got) != len(lines) {
			t.Fatalf("%s: %d rows of %d records: %v", file, len(got), len(lines), errs)
		}
		for i, line := range lines {
			r := got[i]
			where := filepath.Base(file) + ": " + line
			keys := encoded
			if r["type"] == "EXECVE" {
				keys = append(slices.Clone(encoded), "a0", "a1", "a2", "a3")
				for k := range extra(t, r) {
					if argKey.MatchString(k) {
						keys = append(keys, k)
					}
				}
			}
			// No value of an encoded key is left as hex (unless written in quotes: a0="3005").
			for _, k := range keys {
				if v, ok := rowValue(t, r, k); ok && upperHex.MatchString(v) && !strings.Contains(line, k+`="`+v+`"`) {
					t.Errorf("%s = %q, still hex: %.160s", k, v, where)
				}
			}
			// What auparse decodes, the row holds decoded the same way.
			msg, err := auparse.ParseLogLine(line)
			if err != nil {
				continue
			}
			want, err := msg.Data()
			if err != nil {
				continue
			}
			for k, w := range want {
				isArg := argKey.MatchString(k) && r["type"] == "EXECVE"
				if !isArg && !slices.Contains(encoded, k) {
					continue
				}
				g, ok := rowValue(t, r, k)
				if !ok {
					continue // auditd's unset values are NULL here and kept by auparse
				}
				compared++
				// auparse joins the NUL-separated parts with a space, trailing ones too, and
				// keeps bytes that are not UTF-8.
				w = strings.TrimRight(strings.ToValidUTF8(w, "\uFFFD"), " ")
				if g != w {
					t.Errorf("%s = %q, auparse decodes %q: %.160s", k, g, w, where)
				}
				if !strings.Contains(line, " "+k+`="`) && !strings.Contains(line, " "+k+"=(") {
					decoded++ // written unquoted: hex
				}
			}
		}
	}
	t.Logf("%d values compared with auparse's, %d of them hex-encoded", compared, decoded)
	if compared == 0 || decoded == 0 {
		t.Errorf("compared %d values with auparse's, %d hex-encoded: the corpus should hold some", compared, decoded)
	}
}

// The decoded values are valid JSON in extra_message_fields.
func TestDecodedExtraIsJSON(t *testing.T) {
	r := row(t, "type=EXECVE msg=audit(1700000000.000:20): argc=5 a0=\"printf\" a1=\"x\" a2=\"y\" a3=\"z\" a4=225C0A0900")
	got := extra(t, r)
	if got["a4"] != "\"\\\n\t" {
		b, _ := json.Marshal(got)
		t.Errorf("extra_message_fields = %s, want a4 %q", b, "\"\\\n\t")
	}
}
