package textlog

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// regex matches records against a regular expression (RE2 syntax) whose named groups are the
// fields. The parts of match are joined without separators. Grok-style references name
// patterns: %{NOTSPACE:user} is a group named user matching the NOTSPACE pattern, %{INT} matches
// without capturing. Patterns are the built-in ones below and the schema's patternDefinitions,
// which may refer to each other. A group that took no part in the match gives no value.
type regex struct {
	re    *regexp.Regexp
	names []string // field name of each submatch, "" for unnamed groups
}

// grokPatterns are the named patterns every regex parser knows, in the spirit of the grok
// library of Logstash (written for RE2: no look-around, no back-references).
var grokPatterns = map[string]string{
	"USERNAME":          `[a-zA-Z0-9._-]+`,
	"USER":              `%{USERNAME}`,
	"EMAILLOCALPART":    `[a-zA-Z0-9!#$%&'*+/=?^_{|}~-]+(?:\.[a-zA-Z0-9!#$%&'*+/=?^_{|}~-]+)*`,
	"EMAILADDRESS":      `%{EMAILLOCALPART}@%{HOSTNAME}`,
	"INT":               `(?:[+-]?(?:[0-9]+))`,
	"BASE10NUM":         `(?:[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+))`,
	"NUMBER":            `(?:%{BASE10NUM})`,
	"BASE16NUM":         `(?:0[xX]?[0-9a-fA-F]+)`,
	"POSINT":            `\b(?:[1-9][0-9]*)\b`,
	"NONNEGINT":         `\b(?:[0-9]+)\b`,
	"WORD":              `\b\w+\b`,
	"NOTSPACE":          `\S+`,
	"SPACE":             `\s*`,
	"DATA":              `.*?`,
	"GREEDYDATA":        `.*`,
	"QUOTEDSTRING":      `(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`(?:[^`\\\\]|\\\\.)*`" + `)`,
	"QS":                `%{QUOTEDSTRING}`,
	"UUID":              `[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}`,
	"MAC":               `(?:%{CISCOMAC}|%{WINDOWSMAC}|%{COMMONMAC})`,
	"CISCOMAC":          `(?:(?:[A-Fa-f0-9]{4}\.){2}[A-Fa-f0-9]{4})`,
	"WINDOWSMAC":        `(?:(?:[A-Fa-f0-9]{2}-){5}[A-Fa-f0-9]{2})`,
	"COMMONMAC":         `(?:(?:[A-Fa-f0-9]{2}:){5}[A-Fa-f0-9]{2})`,
	"IPV4":              `(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])`,
	"IPV6":              `(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|%{IPV4})(?:%[0-9A-Za-z]+)?`,
	"IP":                `(?:%{IPV6}|%{IPV4})`,
	"HOSTNAME":          `\b(?:[0-9A-Za-z][0-9A-Za-z-]{0,62})(?:\.(?:[0-9A-Za-z][0-9A-Za-z-]{0,62}))*\.?`,
	"IPORHOST":          `(?:%{IP}|%{HOSTNAME})`,
	"HOSTPORT":          `%{IPORHOST}:%{POSINT}`,
	"PATH":              `(?:%{UNIXPATH}|%{WINPATH})`,
	"UNIXPATH":          `(?:/[^/\s?#]*)+`,
	"WINPATH":           `(?:[A-Za-z]+:|\\)(?:\\[^\\?*]*)+`,
	"URIPROTO":          `[A-Za-z][A-Za-z0-9+\-.]*`,
	"URIHOST":           `%{IPORHOST}(?::%{POSINT})?`,
	"URIPATH":           `(?:/[A-Za-z0-9$.+!*'(){},~:;=@#%&_\-]*)+`,
	"URIPARAM":          `\?[A-Za-z0-9$.+!*'|(){},~@#%&/=:;_?\-\[\]<>]*`,
	"URIPATHPARAM":      `%{URIPATH}(?:%{URIPARAM})?`,
	"URI":               `%{URIPROTO}://(?:%{USER}(?::[^@]*)?@)?(?:%{URIHOST})?(?:%{URIPATHPARAM})?`,
	"MONTH":             `\b(?:[Jj]an(?:uary)?|[Ff]eb(?:ruary)?|[Mm]ar(?:ch)?|[Aa]pr(?:il)?|[Mm]ay|[Jj]un(?:e)?|[Jj]ul(?:y)?|[Aa]ug(?:ust)?|[Ss]ep(?:tember)?|[Oo]ct(?:ober)?|[Nn]ov(?:ember)?|[Dd]ec(?:ember)?)\b`,
	"MONTHNUM":          `(?:0?[1-9]|1[0-2])`,
	"MONTHDAY":          `(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])`,
	"DAY":               `(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)`,
	"YEAR":              `(?:\d\d){1,2}`,
	"HOUR":              `(?:2[0123]|[01]?[0-9])`,
	"MINUTE":            `(?:[0-5][0-9])`,
	"SECOND":            `(?:(?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?)`,
	"TIME":              `%{HOUR}:%{MINUTE}(?::%{SECOND})?`,
	"ISO8601_TIMEZONE":  `(?:Z|[+-]%{HOUR}(?::?%{MINUTE}))`,
	"TIMESTAMP_ISO8601": `%{YEAR}-%{MONTHNUM}-%{MONTHDAY}[T ]%{HOUR}:?%{MINUTE}(?::?%{SECOND})?%{ISO8601_TIMEZONE}?`,
	"DATE_US":           `%{MONTHNUM}[/-]%{MONTHDAY}[/-]%{YEAR}`,
	"DATE_EU":           `%{MONTHDAY}[./-]%{MONTHNUM}[./-]%{YEAR}`,
	"SYSLOGTIMESTAMP":   `%{MONTH} +%{MONTHDAY} %{TIME}`,
	"HTTPDATE":          `%{MONTHDAY}/%{MONTH}/%{YEAR}:%{TIME} %{INT}`,
	"PROG":              `[\x21-\x5a\x5c\x5e-\x7e]+`,
	"SYSLOGPROG":        `%{PROG}(?:\[%{POSINT}\])?`,
	"LOGLEVEL":          `(?i:alert|trace|debug|notice|info(?:rmation)?|warn(?:ing)?|err(?:or)?|crit(?:ical)?|fatal|severe|emerg(?:ency)?)`,
}

func newRegex(parts []string, defs map[string]string) (*regex, error) {
	if len(parts) == 0 {
		return nil, errors.New("regex needs at least one pattern in match")
	}
	c := &grokCompiler{defs: defs}
	expr, err := c.expand(strings.Join(parts, ""), 0)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("regex: %w", err)
	}
	r := &regex{re: re, names: make([]string, re.NumSubexp()+1)}
	for i, n := range re.SubexpNames() {
		if n == "" {
			continue
		}
		if real, ok := c.fields[n]; ok {
			r.names[i] = real
		} else {
			r.names[i] = n // a (?P<name>...) group written in the pattern
		}
	}
	return r, nil
}

// CheckRegex reports whether a regex parser's patterns compile.
func CheckRegex(parts []string, defs map[string]string) error {
	_, err := newRegex(parts, defs)
	return err
}

// grokCompiler expands %{PATTERN:field} references into RE2 syntax.
type grokCompiler struct {
	defs   map[string]string
	fields map[string]string // group name in the expression -> field name
	n      int
}

const maxGrokDepth = 32

func (c *grokCompiler) expand(s string, depth int) (string, error) {
	if depth > maxGrokDepth {
		return "", errors.New("regex: pattern definitions refer to each other in a loop")
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "%{")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("regex: unclosed %%{ in %q", s)
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, field, _ := strings.Cut(ref, ":")
		field, _, _ = strings.Cut(field, ":") // %{INT:n:int}: the type is the schema's business
		def, ok := c.defs[name]
		if !ok {
			def, ok = grokPatterns[name]
		}
		if !ok {
			return "", fmt.Errorf("regex: unknown pattern %%{%s}", name)
		}
		inner, err := c.expand(def, depth+1)
		if err != nil {
			return "", err
		}
		if field == "" {
			b.WriteString("(?:" + inner + ")")
			continue
		}
		if c.fields == nil {
			c.fields = map[string]string{}
		}
		group := "osprey_f" + strconv.Itoa(c.n)
		c.n++
		c.fields[group] = field
		b.WriteString("(?P<" + group + ">" + inner + ")")
	}
}

func (r *regex) split(rec []byte, vals []value) ([]value, error) {
	m := r.re.FindSubmatchIndex(rec)
	if m == nil {
		return vals, errors.New("does not match the regex")
	}
	for i, name := range r.names {
		if name == "" || m[2*i] < 0 {
			continue
		}
		vals = append(vals, value{name: name, v: rec[m[2*i]:m[2*i+1]]})
	}
	return vals, nil
}

// RequiredLiterals returns text that every record a regex parser matches contains: the literal
// parts the expression cannot do without. A record lacking one of them cannot match, which is
// cheaper to find out than running the expression.
func RequiredLiterals(parts []string, defs map[string]string) ([][]byte, error) {
	r, err := newRegex(parts, defs)
	if err != nil {
		return nil, err
	}
	re, err := syntax.Parse(r.re.String(), syntax.Perl)
	if err != nil {
		return nil, err
	}
	var lits [][]byte
	var walk func(n *syntax.Regexp)
	walk = func(n *syntax.Regexp) {
		switch n.Op {
		case syntax.OpLiteral:
			if n.Flags&syntax.FoldCase == 0 {
				lits = append(lits, []byte(string(n.Rune)))
			}
		case syntax.OpCapture, syntax.OpPlus:
			walk(n.Sub[0])
		case syntax.OpRepeat:
			if n.Min > 0 {
				walk(n.Sub[0])
			}
		case syntax.OpConcat:
			for _, s := range n.Sub {
				walk(s)
			}
		}
	}
	walk(re.Simplify())
	return lits, nil
}
