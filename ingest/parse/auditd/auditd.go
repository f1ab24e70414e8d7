// Package auditd parses Linux audit daemon records (audit.log lines) into Linux.Auditd rows.
//
// github.com/elastic/go-libaudit/v2/auparse reads the record header: the record type, the time
// and the event serial of msg=audit(1364481363.243:24287). The key=value body is read here,
// keeping the values as auditd wrote them, unquoted: auparse's Data() rewrites or removes
// standard keys (success, res, key, subj, saddr) that are columns of the Linux.Auditd table.
// Values auditd uses for "unset" (?, (null), empty) are stored as NULL, as auparse does.
//
// The values auditd hex-encodes are decoded, as ausearch -i shows them (see decode.go): acct,
// exe, comm, cmd, proctitle, cwd, name, data, ocomm, path and the arguments of an EXECVE record.
//
// A record is a raw line, optionally prefixed with node=<host> (auditd name_format), or a JSON
// object carrying the raw line in its "log" key, as Fluent Bit's tail input sends it. In auditd's
// enriched format (log_format = ENRICHED) a 0x1d byte follows the record and precedes the
// interpreted values, upper-case keys such as UID="root" or SADDR={ saddr_fam=inet ... }: they
// are read as pairs like the others, and having no column they land in extra_message_fields.
package auditd

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/valyala/fastjson"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
)

// Names of the columns the parser fills itself.
const (
	colType   = "type"
	colExtra  = "extra_message_fields"
	colTime   = "timestamp"
	colSerial = "eventId"
)

// Parser parses audit records into a table whose schema is Linux.Auditd's (or extends it).
// It is not safe for concurrent use.
type Parser struct {
	schema                        *batch.Schema
	iType, iExtra, iTime, iSerial int
	vals                          [][]byte // value of each top-level column, nil when absent
	extra                         []pair
	json                          fastjson.Parser
	serial                        []byte // the eventId text
	buf                           []byte // extra_message_fields text
	execve                        bool   // the record is an EXECVE one: its a0, a1, ... are arguments
	decoded                       []byte // decoded values of the record, appended to only
	chunks                        []chunk
}

// chunk is a piece of an EXECVE argument too long for one pair, a1[0]=... a1[1]=...
type chunk struct{ arg, hex []byte }

type pair struct{ k, v []byte }

// New returns a parser for the schema, which must have the columns type, extra_message_fields,
// timestamp and eventId.
func New(s *batch.Schema) (*Parser, error) {
	p := &Parser{schema: s, iType: -1, iExtra: -1, iTime: -1, iSerial: -1}
	for i, f := range s.Fields {
		switch f.Name {
		case colType:
			p.iType = i
		case colExtra:
			p.iExtra = i
		case colTime:
			p.iTime = i
		case colSerial:
			p.iSerial = i
		}
	}
	if p.iType < 0 || p.iExtra < 0 || p.iTime < 0 || p.iSerial < 0 {
		return nil, fmt.Errorf("schema %s: the auditd parser needs the columns %s, %s, %s and %s", s.LogType, colType, colExtra, colTime, colSerial)
	}
	p.vals = make([][]byte, len(s.Fields))
	return p, nil
}

var (
	errNoLog   = errors.New(`JSON record without a "log" string`)
	errNoMsg   = errors.New("not an audit record: no msg=audit(...) header")
	useless    = [][]byte{[]byte(""), []byte("?"), []byte("?,"), []byte("(null)")}
	typePrefix = []byte("type=")
	msgToken   = []byte(" msg=")
	nodePrefix = []byte("node=")
)

// Check rejects, cheaply, records that cannot be audit records: a raw record starts with type=
// (or node=), a JSON one is an object.
func Check(rec []byte) error {
	line := bytes.TrimLeft(rec, " \t")
	if bytes.HasPrefix(line, typePrefix) || bytes.HasPrefix(line, nodePrefix) || len(line) > 0 && line[0] == '{' {
		return nil
	}
	return errNotAudit
}

var errNotAudit = errors.New("not an audit record: does not start with type=")

// Parse decodes one record into the builder's open row.
func (p *Parser) Parse(rec []byte, b *batch.Builder) error {
	line := bytes.TrimSpace(rec)
	if len(line) > 0 && line[0] == '{' {
		v, err := p.json.ParseBytes(line)
		if err != nil {
			return fmt.Errorf("invalid JSON: %v", err)
		}
		raw := v.GetStringBytes("log")
		if raw == nil {
			return errNoLog
		}
		line = bytes.TrimSpace(raw)
	}
	clear(p.vals)
	p.extra = p.extra[:0]
	p.decoded = p.decoded[:0]
	p.chunks = p.chunks[:0]
	if rest, ok := bytes.CutPrefix(line, nodePrefix); ok {
		// name_format adds node=<name> before the type.
		sp := bytes.IndexByte(rest, ' ')
		if sp < 0 {
			return errNoMsg
		}
		p.extra = append(p.extra, pair{[]byte("node"), rest[:sp]})
		line = bytes.TrimLeft(rest[sp:], " ")
	}
	if !bytes.HasPrefix(line, typePrefix) {
		return fmt.Errorf("not an audit record: does not start with type=")
	}
	mi := bytes.Index(line, msgToken)
	if mi < 0 {
		return errNoMsg
	}
	typ := line[len(typePrefix):mi]
	if len(typ) == 0 {
		return fmt.Errorf("not an audit record: empty type")
	}
	msg, err := auparse.ParseLogLine(string(line))
	if err != nil {
		// Record types newer than go-libaudit are kept under their own name.
		if msg, err = auparse.Parse(0, string(line[mi+len(msgToken):])); err != nil {
			return fmt.Errorf("not an audit record: %v", err)
		}
	}
	body := line[mi+len(msgToken):]
	end := bytes.IndexByte(body, ')')
	if end < 0 {
		return errNoMsg
	}
	body = bytes.TrimPrefix(body[end+1:], []byte(":"))
	body = normalize(msg.RecordType, body)
	p.execve = msg.RecordType == auparse.AUDIT_EXECVE
	p.pairs(body, false)
	p.joinChunks()

	p.vals[p.iType] = typ
	p.serial = strconv.AppendUint(p.serial[:0], uint64(msg.Sequence), 10)
	p.vals[p.iSerial] = p.serial
	return p.write(b, msg.Timestamp)
}

// normalize rewrites the few record types whose bodies are not key=value pairs, as auparse does.
func normalize(typ auparse.AuditMessageType, body []byte) []byte {
	switch typ {
	case auparse.AUDIT_AVC:
		// "avc:  denied  { read write } for  pid=..." -> "seresult=denied seperms=read,write pid=..."
		s := bytes.TrimLeft(body, " ")
		rest, ok := bytes.CutPrefix(s, []byte("avc:"))
		if !ok {
			return body
		}
		open, close := bytes.IndexByte(rest, '{'), bytes.IndexByte(rest, '}')
		if open < 0 || close < open {
			return body
		}
		result := bytes.TrimSpace(rest[:open])
		perms := bytes.Fields(rest[open+1 : close])
		after := rest[close+1:]
		if i := bytes.Index(after, []byte("for ")); i >= 0 {
			after = after[i+4:]
		}
		out := append([]byte("seresult="), result...)
		out = append(out, " seperms="...)
		out = append(out, bytes.Join(perms, []byte(","))...)
		out = append(out, ' ')
		return append(out, after...)
	case auparse.AUDIT_LOGIN:
		body = bytes.Replace(body, []byte("old "), []byte("old_"), 2)
		return bytes.Replace(body, []byte("new "), []byte("new_"), 2)
	}
	// Older PAM records end with (hostname=h, addr=a, terminal=t res=r)': unwrap the group so
	// that its pairs read like the others (auparse does this for a few record types; the format
	// appears in more).
	if i := bytes.Index(body, []byte(" (hostname=")); i >= 0 {
		group := bytes.TrimRight(body[i+2:], ")' ")
		group = bytes.ReplaceAll(group, []byte(", "), []byte(" "))
		out := append(append([]byte(nil), body[:i+1]...), group...)
		if strings.HasSuffix(strings.TrimRight(string(body), " "), "'") {
			out = append(out, '\'')
		}
		return out
	}
	return body
}

// pairs reads key=value pairs; inMsg says they come from inside msg='...'.
func (p *Parser) pairs(s []byte, inMsg bool) {
	enriched := false // after the 0x1d of the enriched format
	for len(s) > 0 {
		// Skip separators: spaces and the 0x1d that starts auditd's enriched fields.
		i := 0
		for i < len(s) && (s[i] == ' ' || s[i] == 0x1d || s[i] == '\t') {
			enriched = enriched || s[i] == 0x1d
			i++
		}
		s = s[i:]
		if len(s) == 0 {
			return
		}
		k := 0
		for k < len(s) && isKeyByte(s[k]) {
			k++
		}
		key := s[:k]
		var index []byte // M of an EXECVE argument's piece aN[M]=
		if k > 0 && k < len(s) && s[k] == '[' {
			j := k + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j > k+1 && j < len(s) && s[j] == ']' {
				index = s[k+1 : j]
				k = j + 1
			}
		}
		if k == 0 || k == len(s) || s[k] != '=' {
			// Not a pair (free text such as "(hostname=" leftovers): skip a word.
			sp := bytes.IndexAny(s, " \x1d")
			if sp < 0 {
				return
			}
			s = s[sp:]
			continue
		}
		s = s[k+1:]
		var val []byte
		quote := byte(0)
		switch {
		case len(s) > 0 && (s[0] == '"' || s[0] == '\''):
			quote = s[0]
			end := bytes.IndexByte(s[1:], quote)
			if end < 0 {
				val, s = s[1:], nil // unterminated: take the rest
			} else {
				val, s = s[1:1+end], s[2+end:]
			}
		case enriched && len(s) > 0 && s[0] == '{':
			// An interpreted socket address: SADDR={ saddr_fam=inet laddr=10.0.0.1 lport=22 }.
			end := bytes.IndexByte(s, '}')
			if end < 0 {
				end = len(s) - 1
			}
			val, s = s[:end+1], s[end+1:]
		default:
			end := bytes.IndexAny(s, " \x1d")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		if index != nil {
			if p.execve && isArg(key) {
				p.chunks = append(p.chunks, chunk{key, val})
			}
			continue // a piece of something else: not a pair of a known shape
		}
		if !inMsg && quote == '\'' && string(key) == "msg" {
			p.pairs(val, true)
			continue
		}
		p.set(key, val, quote != 0, inMsg)
	}
}

// joinChunks sets each EXECVE argument written in pieces (a1_len=300 a1[0]=... a1[1]=...) to
// the text of its pieces joined. Pieces are always hex.
func (p *Parser) joinChunks() {
	for len(p.chunks) > 0 {
		arg := p.chunks[0].arg
		start := len(p.decoded)
		rest := p.chunks[:0]
		for _, c := range p.chunks {
			if bytes.Equal(c.arg, arg) {
				p.decoded = append(p.decoded, c.hex...)
			} else {
				rest = append(rest, c)
			}
		}
		p.chunks = rest
		joined := p.decoded[start:len(p.decoded):len(p.decoded)]
		p.set(arg, joined, false, false)
	}
}

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// set stores a pair: in its column when it has one, in extra_message_fields when it comes from
// msg or has no column. quoted says the value was written in quotes.
func (p *Parser) set(key, val []byte, quoted, inMsg bool) {
	for _, u := range useless {
		if bytes.Equal(val, u) {
			return
		}
	}
	if !quoted && isEncoded(key, p.execve) {
		if val = p.decode(val); len(val) == 0 {
			return // only NULs
		}
	}
	i := p.schema.FieldIndex(string(key))
	own := i >= 0 && i != p.iType && i != p.iExtra && i != p.iTime && i != p.iSerial
	if own && (p.vals[i] == nil || !inMsg) {
		p.vals[i] = val // a value outside msg wins over one inside
	}
	if inMsg || !own {
		p.extra = append(p.extra, pair{key, val})
	}
}

// write appends the row.
func (p *Parser) write(b *batch.Builder, ts time.Time) error {
	cols := b.Root.Fields
	for i, c := range cols {
		switch i {
		case p.iTime:
			c.(*batch.TimeCol).Append(ts)
		case p.iExtra:
			if len(p.extra) == 0 {
				c.AppendNull()
				continue
			}
			p.buf = appendJSONObject(p.buf[:0], p.extra)
			c.(*batch.StringCol).Append(p.buf)
		default:
			v := p.vals[i]
			if v == nil {
				if p.schema.Fields[i].Required {
					return fmt.Errorf("required field %s is missing", p.schema.Fields[i].Name)
				}
				c.AppendNull()
				continue
			}
			sc, ok := c.(*batch.StringCol)
			if !ok {
				return fmt.Errorf("field %s: the auditd parser only fills string columns", p.schema.Fields[i].Name)
			}
			sc.Append(v)
		}
	}
	return nil
}

// appendJSONObject writes pairs as a JSON object of strings; a repeated key keeps its last value.
func appendJSONObject(dst []byte, pairs []pair) []byte {
	dst = append(dst, '{')
	first := true
	for i, kv := range pairs {
		repeated := false
		for _, later := range pairs[i+1:] {
			if bytes.Equal(later.k, kv.k) {
				repeated = true
				break
			}
		}
		if repeated {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, kv.k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, kv.v)
	}
	return append(dst, '}')
}

func appendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for len(s) > 0 {
		c := s[0]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		case c < utf8.RuneSelf:
			dst = append(dst, c)
		default:
			r, size := utf8.DecodeRune(s)
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, "\ufffd"...)
			} else {
				dst = append(dst, s[:size]...)
			}
			s = s[size:]
			continue
		}
		s = s[1:]
	}
	return append(dst, '"')
}
