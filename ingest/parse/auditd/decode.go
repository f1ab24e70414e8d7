package auditd

// Decoding of the values auditd hex-encodes.
//
// The kernel (audit_log_untrustedstring) and the audit userspace (audit_encode_value) write a
// value that may hold a space, a quote, a control character or a byte above 0x7e as upper-case
// hex, and any other value in double quotes: "/usr/bin/id" or 2F746D702F6D7920646972. ausearch -i
// shows both as text. go-libaudit's auparse decodes the same way, in Data(), for one key per
// record type (acct of USER_LOGIN only, exe of SYSCALL only, ...), and its hex helpers are not
// exported, so the parser decodes here, by key, whatever the record type.
//
// The rule, per value of an encoded key:
//   - a quoted value is text already: kept as written, without its quotes;
//   - (null), ? and an empty value are NULL (before any decoding);
//   - an unquoted value of an even number of upper-case hex digits is decoded; NUL bytes become
//     spaces (they separate the arguments of proctitle), trailing ones are dropped;
//   - any other unquoted value (odd length, a character that is not an upper-case hex digit)
//     is kept as written: auditd did not encode it.
//
// Lower-case hex is not taken for encoded: neither the kernel nor the userspace writes it, and old
// PAM records write some of these keys unquoted as plain text (acct=root), where a name such as
// "cafe" would otherwise be read as hex.
//
// Decoded bytes that are not UTF-8 are stored with U+FFFD in their place, as every string
// column is; control characters (a TTY record's \r) are kept.

// encodedKeys are the keys whose values auditd may hex-encode, in every record type: those of
// ausearch's "escaped" interpretation, and proctitle and data.
var encodedKeys = map[string]bool{
	"acct":      true,
	"cmd":       true,
	"comm":      true,
	"cwd":       true,
	"data":      true,
	"exe":       true,
	"name":      true,
	"ocomm":     true,
	"path":      true,
	"proctitle": true,
}

// isEncoded says whether values of key may be hex-encoded; execve says the record is an EXECVE
// one, whose a0, a1, ... are the arguments (in a SYSCALL record they are hex numbers, registers).
func isEncoded(key []byte, execve bool) bool {
	if execve && isArg(key) {
		return true
	}
	return encodedKeys[string(key)]
}

// isArg says whether key is a0, a1, ...
func isArg(key []byte) bool {
	if len(key) < 2 || key[0] != 'a' {
		return false
	}
	for _, c := range key[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// decode returns the text of an unquoted value that auditd hex-encoded, appended to p.decoded,
// or the value itself when it is not hex.
func (p *Parser) decode(v []byte) []byte {
	if len(v) == 0 || len(v)%2 != 0 {
		return v
	}
	for _, c := range v {
		if unhex(c) < 0 {
			return v
		}
	}
	start := len(p.decoded)
	for i := 0; i < len(v); i += 2 {
		c := byte(unhex(v[i])<<4 | unhex(v[i+1]))
		if c == 0 {
			c = ' '
		}
		p.decoded = append(p.decoded, c)
	}
	// Trailing NULs, now spaces, are dropped: a value ends with one when a process set its
	// title with a NUL at the end.
	end := len(p.decoded)
	for end > start && p.decoded[end-1] == ' ' && v[2*(end-start)-2] == '0' && v[2*(end-start)-1] == '0' {
		end--
	}
	p.decoded = p.decoded[:end]
	return p.decoded[start:end:end]
}

// unhex returns the value of an upper-case hex digit, or -1.
func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
