// Package syslog parses syslog messages (RFC 5424 and RFC 3164) into rows of the Syslog.RFC5424
// and Syslog.RFC3164 log types.
//
// The parsers fill the columns they know by name: priority, facility, severity, version
// (RFC 5424), timestamp, hostname, appname, procid, msgid (RFC 5424), structured_data (RFC 5424,
// a json column: {"sd-id": {"param": "value"}}) and message. A schema may leave any of them out
// or add others, which stay NULL.
//
// RFC 3164 messages are read as syslog daemons write them to files as well as on the wire: the
// <PRI> is optional (files such as /var/log/syslog leave it out, and priority, facility and
// severity are then NULL), the timestamp is "Mmm dd hh:mm:ss" or RFC 3339, and the tag is
// appname[procid]:. A timestamp without a year is taken in the year that puts it closest
// before the parse time (up to two days ahead, for clocks and zones that are a little off);
// timestamps without a zone are UTC.
package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/parse/timefmt"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// Format is a syslog format.
type Format int

// The formats.
const (
	RFC5424 Format = iota
	RFC3164
)

// The columns the parsers fill.
const (
	colPriority = iota
	colFacility
	colSeverity
	colVersion
	colTimestamp
	colHostname
	colAppname
	colProcID
	colMsgID
	colStructured
	colMessage
	numCols
)

var colNames = [numCols]string{"priority", "facility", "severity", "version", "timestamp", "hostname",
	"appname", "procid", "msgid", "structured_data", "message"}

// Parser parses syslog messages of one format. It is not safe for concurrent use.
type Parser struct {
	format Format
	schema *batch.Schema
	slot   []int // the known column of each top-level field, or -1

	msg message
	sd  []byte
	rfc timefmt.Parser
}

type message struct {
	hasPri                     bool
	pri                        int
	version                    []byte
	ts                         time.Time
	hasTS                      bool
	host, app, procID, msgID   []byte
	structured                 []byte // JSON text, nil when absent
	text                       []byte
	hasText                    bool
	appSet, procSet, msgIDSet  bool
	hostSet, versionSet, sdSet bool
}

// New returns a parser of the format for a table schema. Known columns must have a type the
// parser can fill: numbers for priority, facility, severity and version, a timestamp for
// timestamp, strings (or json) for the others.
func New(s *batch.Schema, f Format) (*Parser, error) {
	p := &Parser{format: f, schema: s, slot: make([]int, len(s.Fields))}
	rfc, err := timefmt.Compile("rfc3339")
	if err != nil {
		return nil, err
	}
	p.rfc = rfc
	for i, n := range s.Fields {
		p.slot[i] = -1
		for c, name := range colNames {
			if n.Name != name {
				continue
			}
			p.slot[i] = c
			ok := true
			switch c {
			case colPriority, colFacility, colSeverity, colVersion:
				ok = isNumber(n.Type)
			case colTimestamp:
				ok = n.Type == logschema.TypeTimestamp
			default:
				ok = n.Type == logschema.TypeString || n.Type == logschema.TypeJSON
			}
			if !ok {
				return nil, fmt.Errorf("schema %s: the syslog parser cannot fill column %s of type %s", s.LogType, n.Name, n.Type)
			}
		}
	}
	return p, nil
}

func isNumber(t logschema.Type) bool {
	return t == logschema.TypeInt || t == logschema.TypeSmallInt || t == logschema.TypeBigInt
}

var (
	errNoPri      = errors.New("not an RFC 5424 syslog message: no <PRI>")
	errBadPri     = errors.New("syslog: bad <PRI>")
	errNotSyslog  = errors.New("not a syslog message")
	errNo5424     = errors.New("not an RFC 5424 syslog message: want <PRI>VERSION")
	errShort      = errors.New("RFC 5424 syslog message ends early")
	errBadSD      = errors.New("RFC 5424 syslog message: bad STRUCTURED-DATA")
	errNoTime3164 = errors.New("not an RFC 3164 syslog message: no timestamp")
)

// Check5424 rejects records that do not start like an RFC 5424 message: <PRI>VERSION.
func Check5424(rec []byte) error {
	i := priEnd(rec)
	if i < 0 {
		return errNoPri
	}
	if i >= len(rec) || rec[i] < '1' || rec[i] > '9' {
		return errNo5424
	}
	return nil
}

// Check3164 rejects records that do not start like an RFC 3164 message: <PRI>, a month name or
// a date.
func Check3164(rec []byte) error {
	if len(rec) == 0 {
		return errNotSyslog
	}
	if c := rec[0]; c == '<' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return nil
	}
	return errNotSyslog
}

// priEnd returns the index after <PRI>, or -1.
func priEnd(rec []byte) int {
	if len(rec) < 3 || rec[0] != '<' {
		return -1
	}
	for i := 1; i < len(rec) && i <= 4; i++ {
		if rec[i] == '>' {
			if i == 1 {
				return -1
			}
			return i + 1
		}
		if rec[i] < '0' || rec[i] > '9' {
			return -1
		}
	}
	return -1
}

// readPri reads <PRI> at the start of rec.
func (m *message) readPri(rec []byte) ([]byte, error) {
	end := priEnd(rec)
	if end < 0 {
		return rec, errNoPri
	}
	n, err := strconv.Atoi(string(rec[1 : end-1]))
	if err != nil || n > 191 {
		return rec, errBadPri
	}
	m.hasPri, m.pri = true, n
	return rec[end:], nil
}

// Parse decodes one message into the builder's open row.
func (p *Parser) Parse(rec []byte, b *batch.Builder) error {
	p.msg = message{}
	var err error
	if p.format == RFC5424 {
		err = p.parse5424(rec)
	} else {
		err = p.parse3164(rec, b.ParseTime())
	}
	if err != nil {
		return err
	}
	return p.write(b)
}

// token cuts the next space-separated token.
func token(s []byte) ([]byte, []byte, bool) {
	i := bytes.IndexByte(s, ' ')
	if i < 0 {
		return s, nil, false
	}
	return s[:i], s[i+1:], true
}

func nilValue(v []byte) bool { return len(v) == 1 && v[0] == '-' }

func (p *Parser) parse5424(rec []byte) error {
	m := &p.msg
	rest, err := m.readPri(rec)
	if err != nil {
		return err
	}
	ver, rest, ok := token(rest)
	if !ok || len(ver) == 0 || len(ver) > 2 || ver[0] < '1' || ver[0] > '9' {
		return errNo5424
	}
	m.version, m.versionSet = ver, true
	fields := [5][]byte{}
	for i := range fields {
		var ok bool
		fields[i], rest, ok = token(rest)
		if !ok && i < 4 {
			return errShort
		}
		if !ok {
			rest = nil
		}
	}
	if ts := fields[0]; !nilValue(ts) {
		t, err := p.rfc.Parse(ts)
		if err != nil {
			return fmt.Errorf("RFC 5424 syslog timestamp: %w", err)
		}
		m.ts, m.hasTS = t, true
	}
	m.host, m.hostSet = fields[1], !nilValue(fields[1])
	m.app, m.appSet = fields[2], !nilValue(fields[2])
	m.procID, m.procSet = fields[3], !nilValue(fields[3])
	m.msgID, m.msgIDSet = fields[4], !nilValue(fields[4])
	// STRUCTURED-DATA: "-" or [id param="value" ...]...
	switch {
	case len(rest) == 0:
		return errShort
	case rest[0] == '-':
		rest = rest[1:]
	case rest[0] == '[':
		var err error
		p.sd, rest, err = appendStructured(p.sd[:0], rest)
		if err != nil {
			return err
		}
		m.structured, m.sdSet = p.sd, true
	default:
		return errBadSD
	}
	if len(rest) > 0 {
		if rest[0] != ' ' {
			return errBadSD
		}
		rest = rest[1:]
		rest = bytes.TrimPrefix(rest, []byte("\xef\xbb\xbf")) // the BOM of a UTF-8 MSG
		m.text, m.hasText = rest, len(rest) > 0
	}
	return nil
}

// appendStructured converts STRUCTURED-DATA elements to a JSON object of objects and returns
// the rest of the message.
func appendStructured(dst, s []byte) ([]byte, []byte, error) {
	dst = append(dst, '{')
	first := true
	for len(s) > 0 && s[0] == '[' {
		s = s[1:]
		end := bytes.IndexAny(s, " ]")
		if end <= 0 {
			return nil, nil, errBadSD
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, s[:end])
		dst = append(dst, ":{"...)
		s = s[end:]
		firstParam := true
		for len(s) > 0 && s[0] == ' ' {
			s = s[1:]
			eq := bytes.IndexByte(s, '=')
			if eq <= 0 || eq+1 >= len(s) || s[eq+1] != '"' {
				return nil, nil, errBadSD
			}
			name := s[:eq]
			s = s[eq+2:]
			var val []byte
			i := 0
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\' || s[i+1] == ']') {
					i++
				}
			}
			if i >= len(s) {
				return nil, nil, errBadSD
			}
			val = unescapeSD(s[:i])
			s = s[i+1:]
			if !firstParam {
				dst = append(dst, ',')
			}
			firstParam = false
			dst = appendJSONString(dst, name)
			dst = append(dst, ':')
			dst = appendJSONString(dst, val)
		}
		if len(s) == 0 || s[0] != ']' {
			return nil, nil, errBadSD
		}
		s = s[1:]
		dst = append(dst, '}')
	}
	return append(dst, '}'), s, nil
}

func unescapeSD(v []byte) []byte {
	if bytes.IndexByte(v, '\\') < 0 {
		return v
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\' || v[i+1] == ']') {
			i++
		}
		out = append(out, v[i])
	}
	return out
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func (p *Parser) parse3164(rec []byte, now time.Time) error {
	m := &p.msg
	rest := rec
	if len(rec) > 0 && rec[0] == '<' {
		var err error
		if rest, err = m.readPri(rec); err != nil {
			return err
		}
	}
	var err error
	if rest, err = p.read3164Time(rest, now); err != nil {
		return err
	}
	// HOSTNAME
	rest = bytes.TrimLeft(rest, " ")
	host, after, ok := token(rest)
	if len(host) > 0 && host[len(host)-1] == ':' {
		// No hostname: "Mmm dd hh:mm:ss tag: msg".
		after, ok = rest, true
	} else {
		m.host, m.hostSet = host, len(host) > 0
	}
	if !ok {
		return nil
	}
	rest = bytes.TrimLeft(after, " ")
	// TAG: appname[procid]: — anything else starts the message.
	i := 0
	for i < len(rest) && rest[i] != ' ' && rest[i] != ':' && rest[i] != '[' {
		i++
	}
	if i > 0 && i <= 48 {
		m.app, m.appSet = rest[:i], true
		j := i
		if j < len(rest) && rest[j] == '[' {
			if k := bytes.IndexByte(rest[j:], ']'); k > 0 {
				m.procID, m.procSet = rest[j+1:j+k], k > 1
				j += k + 1
			}
		}
		if j < len(rest) && rest[j] == ':' {
			j++
		}
		rest = bytes.TrimPrefix(rest[j:], []byte(" "))
	}
	m.text, m.hasText = rest, len(rest) > 0
	return nil
}

// read3164Time reads "Mmm dd hh:mm:ss" (completing the year from now) or an RFC 3339 time.
func (p *Parser) read3164Time(s []byte, now time.Time) ([]byte, error) {
	m := &p.msg
	if len(s) >= 15 && s[3] == ' ' && s[9] == ':' && s[12] == ':' {
		month := -1
		for i, name := range months {
			if string(s[:3]) == name {
				month = i + 1
			}
		}
		day, okDay := num(bytes.TrimLeft(s[4:6], " "))
		hh, ok1 := num(s[7:9])
		mm, ok2 := num(s[10:12])
		ss, ok3 := num(s[13:15])
		if month < 0 || !okDay || !ok1 || !ok2 || !ok3 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
			return s, errNoTime3164
		}
		t := time.Date(now.Year(), time.Month(month), day, hh, mm, ss, 0, time.UTC)
		// The year is the one that puts the time closest before now, allowing two days ahead.
		if t.After(now.AddDate(0, 0, 2)) {
			t = t.AddDate(-1, 0, 0)
		}
		m.ts, m.hasTS = t, true
		rest := s[15:]
		// Some daemons add the fraction of a second or the year: "Mmm dd hh:mm:ss.mmm".
		if len(rest) > 0 && rest[0] == '.' {
			j := 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			if frac, err := strconv.ParseFloat("0"+string(rest[:j]), 64); err == nil {
				m.ts = m.ts.Add(time.Duration(frac * float64(time.Second)))
			}
			rest = rest[j:]
		}
		if len(rest) > 0 && rest[0] != ' ' {
			return s, errNoTime3164
		}
		return rest, nil
	}
	ts, rest, _ := token(s)
	if len(ts) >= 20 && ts[4] == '-' {
		if t, err := p.rfc.Parse(ts); err == nil {
			m.ts, m.hasTS = t, true
			return rest, nil
		}
	}
	return s, errNoTime3164
}

func num(s []byte) (int, bool) {
	if len(s) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// write appends the message's values to the row.
func (p *Parser) write(b *batch.Builder) error {
	m := &p.msg
	for i, col := range b.Root.Fields {
		node := p.schema.Fields[i]
		var isSet bool
		switch slot := p.slot[i]; slot {
		case colPriority, colFacility, colSeverity:
			if isSet = m.hasPri; isSet {
				v := m.pri
				switch slot {
				case colFacility:
					v = m.pri / 8
				case colSeverity:
					v = m.pri % 8
				}
				col.(*batch.IntCol).Append(int64(v))
			}
		case colVersion:
			if isSet = m.versionSet; isSet {
				v, _ := strconv.Atoi(string(m.version))
				col.(*batch.IntCol).Append(int64(v))
			}
		case colTimestamp:
			if isSet = m.hasTS; isSet {
				col.(*batch.TimeCol).Append(m.ts)
			}
		case colHostname:
			isSet = appendStr(col, m.host, m.hostSet)
		case colAppname:
			isSet = appendStr(col, m.app, m.appSet)
		case colProcID:
			isSet = appendStr(col, m.procID, m.procSet)
		case colMsgID:
			isSet = appendStr(col, m.msgID, m.msgIDSet)
		case colStructured:
			isSet = appendStr(col, m.structured, m.sdSet)
		case colMessage:
			isSet = appendStr(col, m.text, m.hasText)
		}
		if !isSet {
			if node.Required {
				return fmt.Errorf("required field %s is missing", node.Name)
			}
			col.AppendNull()
		}
	}
	return nil
}

func appendStr(col batch.Column, v []byte, set bool) bool {
	if !set {
		return false
	}
	col.(*batch.StringCol).Append(v)
	return true
}

func appendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
