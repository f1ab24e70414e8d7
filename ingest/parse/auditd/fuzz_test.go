package auditd_test

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/ospreyhq/osprey/ingest/parse/auditd"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
)

// FuzzParse checks that Parse never panics, that a record it accepts makes exactly one row
// with a type and with p_event_time equal to timestamp, and that a record it rejects leaves
// nothing in the builder once rolled back.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`type=SYSCALL msg=audit(1700000000.001:77): arch=c000003e syscall=257 success=no exit=-13 a0=ffffff9c items=1 pid=1201 uid=1000 comm="my cat" exe="/usr/bin/cat" key=(null)`,
		`type=USER_LOGIN msg=audit(1364481363.243:24287): pid=2650 uid=0 auid=4294967295 ses=4294967295 msg='op=login acct="alice" exe="/usr/sbin/sshd" hostname=bastion.example.com addr=203.0.113.7 terminal=ssh res=failed'`,
		`node=web01 type=PROCTITLE msg=audit(1700000000.001:77): proctitle=7368002D63`,
		`type=AVC msg=audit(1700000100.500:9611): avc:  denied  { read write } for  pid=9611 comm="httpd" name="index.html" tclass=file`,
		`type=LOGIN msg=audit(1700000003.300:46): pid=900 uid=0 old auid=4294967295 new auid=1000 old ses=4294967295 new ses=7`,
		`type=CRED_DISP msg=audit(1300000000.123:800): user pid=4242 uid=0 msg='PAM: setcred acct="root" : exe="/bin/su" (hostname=?, addr=?, terminal=pts/0 res=success)'`,
		`type=MY_NEW_TYPE msg=audit(1.2:3): a=b`,
		`type=UNKNOWN[1334] msg=audit(1700000002.250:43): a="unterminated`,
		"type=TTY msg=audit(1700000007.000:5): data=\x1dextra=\xff\xfe uid=0",
		`{"date":1700000000.1,"log":"type=CWD msg=audit(1700000001.500:42): cwd=\"/\""}`,
		`type=EXECVE msg=audit(1700000000.000:9): argc=3 a0="echo" a1_len=11 a1[0]=68656C6C6F a1[1]=20776F726C64 a2=2D6C00`,
		"type=SOCKADDR msg=audit(1700000500.300:902): saddr=020000357F000035\x1dSADDR={ saddr_fam=inet laddr=127.0.0.53 lport=53 }",
		"type=SYSCALL msg=audit(1700000500.123:900): arch=c000003e syscall=59 comm=6D7920636174 exe=2F746D70FF\x1dUID=\"root\" SADDR={ unterminated",
		`type=USER_LOGIN msg=audit(1795158064.001:1305): pid=8801 uid=0 msg='op=login acct=61646D696E exe="/usr/sbin/sshd" res=failed'`,
		`type=PROCTITLE msg=audit(1700000000.000:4): proctitle=0000`,
		`{"date":1}`,
		`type=SYSCALL msg=audit(abc): x=1`,
		``,
	} {
		f.Add([]byte(seed))
	}
	s := auditdSchema(f)
	f.Fuzz(func(t *testing.T, rec []byte) {
		p, err := auditd.New(s)
		if err != nil {
			t.Fatal(err)
		}
		b := batch.NewBuilder(s, batch.NewRowIDs())
		b.Begin()
		if err := p.Parse(rec, b); err != nil {
			b.Rollback()
			if b.Rows() != 0 {
				t.Fatalf("Rows() = %d after a rolled back error %v", b.Rows(), err)
			}
			for _, c := range b.Root.Fields {
				if c.Len() != 0 {
					t.Fatalf("column %s holds %d values after a rolled back error %v", c.Node().Name, c.Len(), err)
				}
			}
			rec := b.Build()
			defer rec.Release()
			if rec.NumRows() != 0 {
				t.Fatalf("built %d rows after a rolled back error %v", rec.NumRows(), err)
			}
			return
		}
		b.End() // panics if a column did not get exactly one value
		out := b.Build()
		defer out.Release()
		if out.NumRows() != 1 {
			t.Fatalf("built %d rows, want 1", out.NumRows())
		}
		if err := s.Check(out); err != nil {
			t.Fatalf("the row does not fit the table: %v", err)
		}
		typ := column(t, out, "type").(*array.String)
		if typ.IsNull(0) {
			t.Fatal("type is NULL")
		}
		ts := column(t, out, "timestamp").(*array.Timestamp)
		ev := column(t, out, batch.FieldEventTime).(*array.Timestamp)
		if ts.IsNull(0) || ev.IsNull(0) || ts.Value(0) != ev.Value(0) {
			t.Fatalf("timestamp = %v (null %v), p_event_time = %v (null %v)", ts.Value(0), ts.IsNull(0), ev.Value(0), ev.IsNull(0))
		}
	})
}

func column(t *testing.T, rec arrow.RecordBatch, name string) arrow.Array {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("%d columns named %s", len(idx), name)
	}
	return rec.Column(idx[0])
}
