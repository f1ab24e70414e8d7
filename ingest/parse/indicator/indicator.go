// Package indicator extracts Panther's indicator values (p_any_ip_addresses, p_any_emails, ...)
// from field values. A schema field names its indicators (ip, hostname, url, email, aws_arn, ...);
// each scanner checks and normalizes a value and adds it to the columns it belongs to. A Set
// collects one row's values; Sorted returns them deduplicated and sorted, as Panther stores them.
package indicator

import (
	"bytes"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unsafe"

	"golang.org/x/net/idna"
)

// Kind is an indicator column.
type Kind uint8

// The indicator columns, in the order they appear in tables.
const (
	IPAddress Kind = iota
	DomainName
	Email
	Username
	TraceID
	ActorID
	MD5
	SHA1
	SHA256
	AWSAccountID
	AWSARN
	AWSInstanceID
	AWSTag
	MACAddress
	SerialNumber
	NumKinds
)

var columns = [NumKinds]string{
	"p_any_ip_addresses", "p_any_domain_names", "p_any_emails", "p_any_usernames", "p_any_trace_ids",
	"p_any_actor_ids", "p_any_md5_hashes", "p_any_sha1_hashes", "p_any_sha256_hashes",
	"p_any_aws_account_ids", "p_any_aws_arns", "p_any_aws_instance_ids", "p_any_aws_tags",
	"p_any_mac_addresses", "p_any_serial_numbers",
}

// Column returns the table column of the kind, such as p_any_ip_addresses.
func (k Kind) Column() string { return columns[k] }

// Scanner is an indicator name of the schema language.
type Scanner uint8

// The indicator names of the schema language.
const (
	ScanIP Scanner = iota + 1
	ScanDomain
	ScanHostname
	ScanURL
	ScanNetAddr
	ScanEmail
	ScanUsername
	ScanTraceID
	ScanActorID
	ScanMD5
	ScanSHA1
	ScanSHA256
	ScanAWSARN
	ScanAWSAccountID
	ScanAWSInstanceID
	ScanAWSTag
	ScanMAC
	ScanSerialNumber
)

var scanners = map[string]Scanner{
	"ip": ScanIP, "domain": ScanDomain, "hostname": ScanHostname, "url": ScanURL, "net_addr": ScanNetAddr,
	"email": ScanEmail, "username": ScanUsername, "trace_id": ScanTraceID, "actor_id": ScanActorID,
	"md5": ScanMD5, "sha1": ScanSHA1, "sha256": ScanSHA256, "aws_arn": ScanAWSARN,
	"aws_account_id": ScanAWSAccountID, "aws_instance_id": ScanAWSInstanceID, "aws_tag": ScanAWSTag,
	"mac": ScanMAC, "serial_number": ScanSerialNumber,
}

// Lookup returns the scanner of an indicator name.
func Lookup(name string) (Scanner, bool) {
	s, ok := scanners[name]
	return s, ok
}

// Kinds returns the columns a scanner can add values to.
func (s Scanner) Kinds() []Kind {
	switch s {
	case ScanIP:
		return []Kind{IPAddress}
	case ScanDomain:
		return []Kind{DomainName}
	case ScanHostname, ScanURL, ScanNetAddr:
		return []Kind{IPAddress, DomainName}
	case ScanEmail:
		return []Kind{Email}
	case ScanUsername:
		return []Kind{Username}
	case ScanTraceID:
		return []Kind{TraceID}
	case ScanActorID:
		return []Kind{ActorID}
	case ScanMD5:
		return []Kind{MD5}
	case ScanSHA1:
		return []Kind{SHA1}
	case ScanSHA256:
		return []Kind{SHA256}
	case ScanAWSARN:
		return []Kind{AWSARN, AWSAccountID, AWSInstanceID}
	case ScanAWSAccountID:
		return []Kind{AWSAccountID}
	case ScanAWSInstanceID:
		return []Kind{AWSInstanceID}
	case ScanAWSTag:
		return []Kind{AWSTag}
	case ScanMAC:
		return []Kind{MACAddress}
	case ScanSerialNumber:
		return []Kind{SerialNumber}
	}
	return nil
}

// Set holds one row's indicator values. The values may point into the caller's buffers: use
// them before those buffers change. The zero Set is ready to use.
type Set struct {
	vals    [NumKinds][][]byte
	dropped bool // some values were dropped (Drop): Sorted leaves out their empty places
	// owned holds values the scanners had to build (lowercased hashes), so that Reset can
	// reuse the memory.
	owned []byte
}

// Reset empties the set, keeping its memory.
func (s *Set) Reset() {
	for i := range s.vals {
		s.vals[i] = s.vals[i][:0]
	}
	s.owned = s.owned[:0]
	s.dropped = false
}

// A Mark is where a Set stood, so that the values added after it can be dropped (Drop).
type Mark [NumKinds]int32

// Mark returns where the set stands.
func (s *Set) Mark() Mark {
	var m Mark
	for k := range s.vals {
		m[k] = int32(len(s.vals[k]))
	}
	return m
}

// Drop removes the values added between two marks of the current row, from taken before to:
// those of a value the row no longer holds (a JSON key given twice keeps its last value). The
// places of the values removed stay, empty, so that other marks stay true.
func (s *Set) Drop(from, to Mark) {
	for k := range s.vals {
		for i := from[k]; i < to[k] && int(i) < len(s.vals[k]); i++ {
			s.vals[k][i] = nil
			s.dropped = true
		}
	}
}

// Sorted returns the values of a kind, sorted and without duplicates.
func (s *Set) Sorted(k Kind) [][]byte {
	v := s.vals[k]
	if s.dropped {
		v = slices.DeleteFunc(v, func(b []byte) bool { return len(b) == 0 })
		s.vals[k] = v
	}
	if len(v) < 2 {
		return v
	}
	slices.SortFunc(v, bytes.Compare)
	v = slices.CompactFunc(v, bytes.Equal)
	s.vals[k] = v
	return v
}

func (s *Set) add(k Kind, v []byte) {
	if len(v) > 0 {
		s.vals[k] = append(s.vals[k], v)
	}
}

// str views b as a string without copying; the string must not outlive b.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// Scan checks and normalizes v for the scanner and adds it to the set.
func (s *Set) Scan(sc Scanner, v []byte) {
	if len(v) == 0 {
		return
	}
	if v[0] <= ' ' || v[len(v)-1] <= ' ' {
		if v = bytes.TrimSpace(v); len(v) == 0 {
			return
		}
	}
	switch sc {
	case ScanIP:
		if isIP(v) {
			s.add(IPAddress, v)
		}
	case ScanDomain:
		s.domain(v)
	case ScanHostname:
		s.hostname(v)
	case ScanURL:
		u, err := url.Parse(str(v))
		if err != nil || u.Host == "" {
			return
		}
		// u.Hostname() is a substring of the input: find it there to keep pointing into v.
		s.hostname(sub(v, u.Hostname()))
	case ScanNetAddr:
		s.hostname(hostOf(v))
	case ScanEmail:
		s.add(Email, v)
	case ScanUsername:
		s.add(Username, v)
	case ScanTraceID:
		s.add(TraceID, v)
	case ScanActorID:
		s.add(ActorID, v)
	case ScanMD5:
		s.hash(MD5, v, 32)
	case ScanSHA1:
		s.hash(SHA1, v, 40)
	case ScanSHA256:
		s.hash(SHA256, v, 64)
	case ScanAWSARN:
		s.arn(v)
	case ScanAWSAccountID:
		if isAccountID(v) {
			s.add(AWSAccountID, v)
		}
	case ScanAWSInstanceID:
		s.add(AWSInstanceID, v)
	case ScanAWSTag:
		s.add(AWSTag, v)
	case ScanMAC:
		if _, err := net.ParseMAC(str(v)); err == nil {
			s.add(MACAddress, v)
		}
	case ScanSerialNumber:
		s.add(SerialNumber, v)
	}
}

func isIP(v []byte) bool {
	if ok, decided := isIPv4(v); decided {
		return ok
	}
	_, err := netip.ParseAddr(str(v))
	return err == nil
}

// isIPv4 checks a dotted-quad IPv4 address as netip.ParseAddr does (four decimal fields up to
// 255, no leading zeros), at a fraction of its cost. It decides only text made of digits and
// dots; anything else (IPv6, zones) is left to netip.
func isIPv4(v []byte) (ok, decided bool) {
	valid := true
	fields, digits, val := 0, 0, 0
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			if digits == 1 && val == 0 {
				valid = false // a leading zero
			}
			val = min(val*10+int(c-'0'), 256)
			digits++
		case c == '.':
			valid = valid && digits > 0 && val <= 255
			fields++
			digits, val = 0, 0
		default:
			return false, false
		}
	}
	return valid && fields == 3 && digits > 0 && val <= 255, true
}

// hostname adds an IP address or else a domain name.
func (s *Set) hostname(v []byte) {
	if len(v) == 0 {
		return
	}
	if isIP(v) {
		s.add(IPAddress, v)
		return
	}
	s.domain(v)
}

// domain adds a domain name without the dot that ends a fully qualified name, with labels in
// IDNA ASCII form (xn--...) turned into Unicode, as Panther stores them.
func (s *Set) domain(v []byte) {
	if n := len(v); n > 1 && v[n-1] == '.' {
		v = v[:n-1]
	}
	if bytes.Contains(v, []byte("xn--")) {
		if u, err := idna.Lookup.ToUnicode(str(v)); err == nil && u != str(v) {
			start := len(s.owned)
			s.owned = append(s.owned, u...)
			v = s.owned[start:]
		}
	}
	s.add(DomainName, v)
}

// hostOf returns the host of host:port, [v6]:port or a bare host.
func hostOf(v []byte) []byte {
	if len(v) > 0 && v[0] == '[' {
		if end := bytes.IndexByte(v, ']'); end > 0 {
			return v[1:end]
		}
		return nil
	}
	if i := bytes.LastIndexByte(v, ':'); i >= 0 && bytes.IndexByte(v[:i], ':') < 0 {
		return v[:i] // exactly one colon: host:port
	}
	return v // no port, or a bare IPv6 address
}

// sub returns the part of v equal to s, which must occur in v; else nil.
func sub(v []byte, s string) []byte {
	if i := strings.Index(str(v), s); i >= 0 {
		return v[i : i+len(s)]
	}
	return nil
}

// hash adds a hex digest of the given length, lowercased.
func (s *Set) hash(k Kind, v []byte, n int) {
	if len(v) != n {
		return
	}
	lower := true
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			lower = false
		default:
			return
		}
	}
	if !lower {
		start := len(s.owned)
		for _, c := range v {
			if c >= 'A' && c <= 'F' {
				c += 'a' - 'A'
			}
			s.owned = append(s.owned, c)
		}
		v = s.owned[start:]
	}
	s.add(k, v)
}

func isAccountID(v []byte) bool {
	if len(v) != 12 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// arn adds an ARN (arn:partition:service:region:account:resource) with its account id and,
// for EC2 instances, the instance id.
func (s *Set) arn(v []byte) {
	if !bytes.HasPrefix(v, []byte("arn:")) {
		return
	}
	// arn:partition:service:region:account:resource, cut without allocating.
	var parts [5][]byte
	rest := v
	for i := range parts {
		j := bytes.IndexByte(rest, ':')
		if j < 0 {
			return
		}
		parts[i], rest = rest[:j], rest[j+1:]
	}
	if len(parts[1]) == 0 || len(parts[2]) == 0 {
		return
	}
	s.add(AWSARN, v)
	if isAccountID(parts[4]) {
		s.add(AWSAccountID, parts[4])
	}
	if string(parts[2]) == "ec2" {
		if id, ok := bytes.CutPrefix(rest, []byte("instance/")); ok {
			s.add(AWSInstanceID, id)
		}
	}
}
