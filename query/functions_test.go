package query

import (
	"context"
	"database/sql"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/lake"
)

// TestFunctions runs the project's SQL functions in SQL, NULLs and bad input included.
func TestFunctions(t *testing.T) {
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, l, Options{})
	check := func(expr, want string) {
		t.Helper()
		_, rows := queryRows(t, db, "SELECT coalesce(CAST("+expr+" AS VARCHAR), 'NULL')")
		if len(rows) != 1 || rows[0] != want {
			t.Errorf("%s = %q, want %q", expr, rows, want)
		}
	}
	check("ip_in_cidr('10.1.2.3', '10.0.0.0/8')", "true")
	check("ip_in_cidr('11.1.2.3', '10.0.0.0/8')", "false")
	check("ip_in_cidr('192.168.1.255', '192.168.1.0/24')", "true")
	check("ip_in_cidr('2001:db8::1', '2001:db8::/32')", "true")
	check("ip_in_cidr('2001:db9::1', '2001:db8::/32')", "false")
	check("ip_in_cidr('10.1.2.3', '2001:db8::/32')", "false")
	check("ip_in_cidr('::ffff:10.1.2.3', '10.0.0.0/8')", "true")
	check("ip_in_cidr('not an ip', '10.0.0.0/8')", "NULL")
	check("ip_in_cidr(NULL, '10.0.0.0/8')", "NULL")

	check("is_private_ip('10.0.0.1')", "true")
	check("is_private_ip('172.16.5.4')", "true")
	check("is_private_ip('172.32.0.1')", "false")
	check("is_private_ip('192.168.0.1')", "true")
	check("is_private_ip('127.0.0.1')", "true")
	check("is_private_ip('169.254.1.1')", "true")
	check("is_private_ip('100.64.0.1')", "true")
	check("is_private_ip('8.8.8.8')", "false")
	check("is_private_ip('fd00::1')", "true")
	check("is_private_ip('fe80::1%eth0')", "true")
	check("is_private_ip('2606:4700::1111')", "false")
	check("is_private_ip('::ffff:192.168.0.1')", "true")
	check("is_private_ip('')", "NULL")

	check("ip_version('192.0.2.1')", "4")
	check("ip_version('2001:db8::1')", "6")
	check("ip_version('[2001:db8::1]')", "6")
	check("ip_version('::ffff:192.0.2.1')", "6")
	check("ip_version('192.0.2.256')", "NULL")
	check("ip_version('example.com')", "NULL")

	check("registered_domain('www.example.com')", "example.com")
	check("registered_domain('a.b.example.co.uk')", "example.co.uk")
	check("registered_domain('WWW.Example.COM.')", "example.com")
	check("registered_domain('api.example.com:8443')", "example.com")
	check("registered_domain('user.github.io')", "user.github.io")
	check("registered_domain('co.uk')", "NULL")
	check("registered_domain('192.0.2.1')", "NULL")
	check("registered_domain('')", "NULL")

	check("url_host('https://User@WWW.Example.com:8443/x?y=1')", "www.example.com")
	check("url_host('http://[2001:db8::1]:80/')", "2001:db8::1")
	check("url_host('example.com/path')", "example.com")
	check("url_host('/just/a/path')", "NULL")
	check("url_host('')", "NULL")
	check("registered_domain(url_host('https://login.microsoftonline.com/common'))", "microsoftonline.com")

	// An invalid network is an error that names the function, not a NULL.
	rows, err := db.Query(context.Background(), "SELECT ip_in_cidr('10.0.0.1', '10.0.0.0/33')")
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "ip_in_cidr") {
		t.Errorf("ip_in_cidr with a bad network: error %v, want one naming ip_in_cidr", err)
	}

	// Over many rows (DuckDB runs the functions from several threads).
	_, got := queryRows(t, db, "SELECT count(*) FILTER (WHERE ip_in_cidr('10.0.' || (i % 256) || '.' || (i // 256 % 256), '10.0.0.0/16')), "+
		"count(*) FILTER (WHERE is_private_ip('10.0.0.' || (i % 256))) FROM range(200000) t(i)")
	if want := []string{"200000|200000"}; !reflect.DeepEqual(got, want) {
		t.Errorf("over 200000 rows: %q, want %q", got, want)
	}
}

// TestFunctionsOnEveryConnection holds several of the pool's connections at once and calls the
// functions on each: they are registered once, in DuckDB's system catalog.
func TestFunctionsOnEveryConnection(t *testing.T) {
	ctx := context.Background()
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, l, Options{})
	var conns []*sql.Conn
	for range 4 {
		c, err := db.SQL().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		var v int
		if err := c.QueryRowContext(ctx, "SELECT ip_version('::1')").Scan(&v); err != nil || v != 6 {
			t.Errorf("connection %d: ip_version('::1') = %d, %v", i, v, err)
		}
		c.Close()
	}
}

// TestParams passes named parameters, to a statement and to a macro.
func TestParams(t *testing.T) {
	ctx := context.Background()
	l := ingestAudit(t, t.TempDir(), []auditEvent{
		{Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)},
		{Action: "B", Time: time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)},
		{Action: "C", Time: time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)},
	})
	db := openDB(t, l, Options{Now: func() time.Time { return time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC) }})
	run := func(req Request) []string {
		t.Helper()
		rows, err := db.Run(ctx, req)
		if err != nil {
			t.Fatalf("Run(%q): %v", req.SQL, err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	const q = "SELECT actionName FROM panther_logs.panther_audit WHERE "
	if got := run(Request{SQL: q + "actionName = $name", Params: map[string]any{"name": "B"}}); !reflect.DeepEqual(got, []string{"B"}) {
		t.Errorf("$name = B: %q", got)
	}
	if got := run(Request{SQL: q + "p_event_time >= $t ORDER BY 1", Params: map[string]any{"t": "2026-03-02 00:00:00"}}); !reflect.DeepEqual(got, []string{"B", "C"}) {
		t.Errorf("p_event_time >= $t: %q", got)
	}
	if got := run(Request{SQL: q + "p_occurs_since($window) ORDER BY 1", Params: map[string]any{"window": "6 h"}}); !reflect.DeepEqual(got, []string{"C"}) {
		t.Errorf("p_occurs_since($window): %q", got)
	}
	if got := run(Request{SQL: q + "true ORDER BY 1 LIMIT $n", Params: map[string]any{"n": "2"}}); !reflect.DeepEqual(got, []string{"A", "B"}) {
		t.Errorf("LIMIT $n: %q", got)
	}
	// A parameter without a value is an error, not another parameter's value.
	if _, err := db.Run(ctx, Request{SQL: q + "actionName = $a OR actionName = $b", Params: map[string]any{"b": "B", "c": "C"}}); err == nil || !strings.Contains(err.Error(), "$a") {
		t.Errorf("missing $a: error %v", err)
	}
	// MaxRows stops the result and says so.
	rows, err := db.Run(ctx, Request{SQL: "SELECT * FROM range(10)", MaxRows: 3})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if n != 3 || !rows.Truncated() {
		t.Errorf("MaxRows 3: %d rows, truncated %v", n, rows.Truncated())
	}
	rows.Close()
	// A timeout cancels the statement.
	_, err = db.Run(ctx, Request{SQL: "SELECT count(*) FROM range(1000000000000) a(i) WHERE i % 7 = 3", Timeout: time.Millisecond})
	if err == nil {
		t.Errorf("a statement past its timeout succeeded")
	}
}
