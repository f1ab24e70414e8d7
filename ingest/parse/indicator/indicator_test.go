package indicator

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestScan(t *testing.T) {
	f := func(name, in string, want map[Kind][]string) {
		t.Helper()
		sc, ok := Lookup(name)
		if !ok {
			t.Fatalf("no scanner %q", name)
		}
		var s Set
		s.Scan(sc, []byte(in))
		for k := range NumKinds {
			got := fmt.Sprintf("%q", s.Sorted(k))
			w := fmt.Sprintf("%q", want[k])
			if len(want[k]) == 0 {
				w = "[]"
			}
			if got != w {
				t.Errorf("%s(%q): %s = %s, want %s", name, in, k.Column(), got, w)
			}
		}
	}
	none := map[Kind][]string{}
	f("ip", "1.2.3.4", map[Kind][]string{IPAddress: {"1.2.3.4"}})
	f("ip", " 2001:db8::1 ", map[Kind][]string{IPAddress: {"2001:db8::1"}})
	f("ip", "1.2.3.4.", none)
	f("ip", "", none)
	f("ip", "not an ip", none)
	f("hostname", "10.0.0.1", map[Kind][]string{IPAddress: {"10.0.0.1"}})
	f("hostname", "pool-96-241-146-97.washdc.fios.verizon.net", map[Kind][]string{DomainName: {"pool-96-241-146-97.washdc.fios.verizon.net"}})
	f("url", "https://user@example.com:8443/path?q=1", map[Kind][]string{DomainName: {"example.com"}})
	// Domains lose the dot of a fully qualified name; IDNA labels are shown in Unicode.
	f("domain", "api.example.com.", map[Kind][]string{DomainName: {"api.example.com"}})
	f("hostname", "xn--fa-hia.com.", map[Kind][]string{DomainName: {"faß.com"}})
	f("domain", "xn--bad--.com", map[Kind][]string{DomainName: {"xn--bad--.com"}})
	f("domain", ".", map[Kind][]string{DomainName: {"."}})
	f("url", "http://[2001:db8::1]:80/", map[Kind][]string{IPAddress: {"2001:db8::1"}})
	f("url", "/relative/path", none)
	f("net_addr", "192.168.1.10:443", map[Kind][]string{IPAddress: {"192.168.1.10"}})
	f("net_addr", "[2001:db8::2]:53", map[Kind][]string{IPAddress: {"2001:db8::2"}})
	f("net_addr", "2001:db8::3", map[Kind][]string{IPAddress: {"2001:db8::3"}})
	f("net_addr", "example.org:25", map[Kind][]string{DomainName: {"example.org"}})
	f("email", "homer@springfield.gov", map[Kind][]string{Email: {"homer@springfield.gov"}})
	f("username", "Homer Simpson", map[Kind][]string{Username: {"Homer Simpson"}})
	f("trace_id", "1111111", map[Kind][]string{TraceID: {"1111111"}})
	f("actor_id", "0", map[Kind][]string{ActorID: {"0"}})
	f("md5", "D41D8CD98F00B204E9800998ECF8427E", map[Kind][]string{MD5: {"d41d8cd98f00b204e9800998ecf8427e"}})
	f("md5", "d41d8cd98f00b204e9800998ecf8427", none)
	f("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709", map[Kind][]string{SHA1: {"da39a3ee5e6b4b0d3255bfef95601890afd80709"}})
	f("sha256", "zz39a3ee5e6b4b0d3255bfef95601890afd80709da39a3ee5e6b4b0d3255bfef", none)
	f("aws_arn", "arn:aws:ec2:us-east-1:123456789012:instance/i-0abcdef1234567890", map[Kind][]string{
		AWSARN: {"arn:aws:ec2:us-east-1:123456789012:instance/i-0abcdef1234567890"}, AWSAccountID: {"123456789012"}, AWSInstanceID: {"i-0abcdef1234567890"}})
	f("aws_arn", "arn:aws:s3:::my-bucket", map[Kind][]string{AWSARN: {"arn:aws:s3:::my-bucket"}})
	f("aws_arn", "not:an:arn", none)
	f("aws_account_id", "123456789012", map[Kind][]string{AWSAccountID: {"123456789012"}})
	f("aws_account_id", "12345678901", none)
	f("mac", "00:1a:2b:3c:4d:5e", map[Kind][]string{MACAddress: {"00:1a:2b:3c:4d:5e"}})
	f("mac", "00:1a:2b", none)
	f("serial_number", "C02XK0AAJGH5", map[Kind][]string{SerialNumber: {"C02XK0AAJGH5"}})
}

func TestSortedDedup(t *testing.T) {
	var s Set
	for _, ip := range []string{"5.6.7.8", "1.2.3.4", "5.6.7.8", "", "1.2.3.4"} {
		s.Scan(ScanIP, []byte(ip))
	}
	s.Scan(ScanMD5, []byte("D41D8CD98F00B204E9800998ECF8427E"))
	s.Scan(ScanMD5, []byte("d41d8cd98f00b204e9800998ecf8427e"))
	if got := fmt.Sprintf("%q", s.Sorted(IPAddress)); got != `["1.2.3.4" "5.6.7.8"]` {
		t.Errorf("ips = %s", got)
	}
	if got := len(s.Sorted(MD5)); got != 1 {
		t.Errorf("md5 count = %d, want 1 (same hash in two cases)", got)
	}
	s.Reset()
	if got := len(s.Sorted(IPAddress)); got != 0 {
		t.Errorf("after Reset: %d ips", got)
	}
}

func TestKinds(t *testing.T) {
	for name, sc := range scanners {
		if len(sc.Kinds()) == 0 {
			t.Errorf("scanner %s has no kinds", name)
		}
	}
}

func BenchmarkScanIP(b *testing.B) {
	v := []byte("187.12.30.233")
	var s Set
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		s.Scan(ScanIP, v)
	}
}

// TestIsIPv4 checks the IPv4 fast path against netip on valid, invalid and borderline text.
func TestIsIPv4(t *testing.T) {
	for _, s := range []string{
		"0.0.0.0", "1.2.3.4", "255.255.255.255", "10.0.0.1", "192.168.001.1", "256.1.1.1",
		"1.2.3", "1.2.3.4.5", "1..2.3", ".1.2.3", "1.2.3.", "01.2.3.4", "1.2.3.04", "1.2.3.0",
		"", ".", "1", "1234.1.1.1", "999.999.999.999", "1.2.3.4a", "::1", "::ffff:1.2.3.4",
		"fe80::1%eth0", "1.2.3.4%x", "00.1.1.1", "0.00.1.1", "2001:db8::1", "1234::", "300.1.1.1x",
	} {
		_, err := netip.ParseAddr(s)
		if got := isIP([]byte(s)); got != (err == nil) {
			t.Errorf("isIP(%q) = %v, netip says %v", s, got, err)
		}
		if ok, decided := isIPv4([]byte(s)); decided && ok != (err == nil) {
			t.Errorf("isIPv4(%q) = %v, netip says %v", s, ok, err)
		}
	}
}
