package query

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
	"golang.org/x/net/publicsuffix"
)

// Function is an SQL function the project adds to DuckDB (DuckDB's inet extension is not
// available, so IP and domain functions are Go scalar UDFs).
type Function struct {
	Name, Signature, Doc string
	args                 []duckdb.Type
	result               duckdb.Type
	fn                   func(args []string) (any, error) // nil result is NULL
}

// Functions lists the project's SQL functions, for documentation and completion.
var Functions = []Function{
	{
		Name: "ip_in_cidr", Signature: "ip_in_cidr(ip VARCHAR, cidr VARCHAR) -> BOOLEAN",
		Doc:  "whether an IPv4 or IPv6 address is in a network such as '10.0.0.0/8'; NULL when ip is not an address",
		args: []duckdb.Type{duckdb.TYPE_VARCHAR, duckdb.TYPE_VARCHAR}, result: duckdb.TYPE_BOOLEAN,
		fn: func(a []string) (any, error) {
			p, err := netip.ParsePrefix(strings.TrimSpace(a[1]))
			if err != nil {
				return nil, fmt.Errorf("ip_in_cidr: %q is not a network such as '10.0.0.0/8'", a[1])
			}
			ip, ok := parseIP(a[0])
			if !ok {
				return nil, nil
			}
			if p.Addr().Is4() && ip.Is4In6() {
				ip = ip.Unmap()
			}
			return p.Contains(ip), nil
		},
	},
	{
		Name: "is_private_ip", Signature: "is_private_ip(ip VARCHAR) -> BOOLEAN",
		Doc:  "whether an address is not globally routable: RFC 1918 and RFC 4193 private ranges, loopback, link-local, and 100.64.0.0/10 (carrier-grade NAT); NULL when ip is not an address",
		args: []duckdb.Type{duckdb.TYPE_VARCHAR}, result: duckdb.TYPE_BOOLEAN,
		fn: func(a []string) (any, error) {
			ip, ok := parseIP(a[0])
			if !ok {
				return nil, nil
			}
			ip = ip.Unmap()
			return ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || cgnat.Contains(ip), nil
		},
	},
	{
		Name: "ip_version", Signature: "ip_version(ip VARCHAR) -> INTEGER",
		Doc:  "4 or 6 (an IPv4-mapped IPv6 address such as '::ffff:192.0.2.1' is 6); NULL when ip is not an address",
		args: []duckdb.Type{duckdb.TYPE_VARCHAR}, result: duckdb.TYPE_INTEGER,
		fn: func(a []string) (any, error) {
			ip, ok := parseIP(a[0])
			switch {
			case !ok:
				return nil, nil
			case ip.Is4():
				return int32(4), nil
			}
			return int32(6), nil
		},
	},
	{
		Name: "registered_domain", Signature: "registered_domain(host VARCHAR) -> VARCHAR",
		Doc:  "the domain a host belongs to by the public suffix list: 'a.b.example.co.uk' -> 'example.co.uk'; NULL for an IP address, a public suffix or an empty host",
		args: []duckdb.Type{duckdb.TYPE_VARCHAR}, result: duckdb.TYPE_VARCHAR,
		fn: func(a []string) (any, error) {
			host := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(a[0])), ".")
			if h, _, ok := strings.Cut(host, ":"); ok && !strings.Contains(host[len(h)+1:], ":") {
				host = h // host:port
			}
			if host == "" || strings.ContainsAny(host, "/ @[]") {
				return nil, nil
			}
			if _, err := netip.ParseAddr(host); err == nil {
				return nil, nil
			}
			d, err := publicsuffix.EffectiveTLDPlusOne(host)
			if err != nil {
				return nil, nil
			}
			return d, nil
		},
	},
	{
		Name: "url_host", Signature: "url_host(url VARCHAR) -> VARCHAR",
		Doc:  "the host of a URL, lowercase, without port or brackets: 'https://User@WWW.Example.com:8443/x' -> 'www.example.com'; a URL without a scheme ('example.com/x') is read as a host and path; NULL when there is no host",
		args: []duckdb.Type{duckdb.TYPE_VARCHAR}, result: duckdb.TYPE_VARCHAR,
		fn: func(a []string) (any, error) {
			s := strings.TrimSpace(a[0])
			if !strings.Contains(s, "://") && !strings.HasPrefix(s, "//") {
				s = "//" + s
			}
			u, err := url.Parse(s)
			if err != nil || u.Hostname() == "" {
				return nil, nil
			}
			return strings.ToLower(u.Hostname()), nil
		},
	},
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// parseIP reads an address, with or without an IPv6 zone or brackets.
func parseIP(s string) (netip.Addr, bool) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "["), "]")
	ip, err := netip.ParseAddr(s)
	return ip, err == nil
}

// udf adapts a Function to duckdb-go's scalar UDF interface.
type udf struct{ f *Function }

var _ duckdb.ScalarFunc = (*udf)(nil)

func (u *udf) Config() duckdb.ScalarFuncConfig {
	in := make([]duckdb.TypeInfo, len(u.f.args))
	for i, t := range u.f.args {
		in[i] = mustTypeInfo(t)
	}
	return duckdb.ScalarFuncConfig{InputTypeInfos: in, ResultTypeInfo: mustTypeInfo(u.f.result)}
}

func (u *udf) Executor() duckdb.ScalarFuncExecutor {
	// DuckDB calls the executor from several threads at once.
	return duckdb.ScalarFuncExecutor{RowExecutor: func(values []driver.Value) (any, error) {
		args := make([]string, len(values))
		for i, v := range values {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%s: argument %d is %T, want text", u.f.Name, i+1, v)
			}
			args[i] = s
		}
		return u.f.fn(args)
	}}
}

func mustTypeInfo(t duckdb.Type) duckdb.TypeInfo {
	info, err := duckdb.NewTypeInfo(t)
	if err != nil {
		panic("BUG: type info of a primitive type: " + err.Error())
	}
	return info
}

// registerFunctions adds Functions to the database. duckdb-go registers a scalar UDF through a
// *sql.Conn (which the connector's init hook does not have); the function goes into DuckDB's
// system catalog, so every connection of the pool sees it, those opened later included
// (TestFunctionsOnEveryConnection).
func registerFunctions(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for i := range Functions {
		f := &Functions[i]
		if err := duckdb.RegisterScalarUDF(conn, f.Name, &udf{f}); err != nil {
			return fmt.Errorf("register function %s: %w", f.Name, err)
		}
	}
	return nil
}
