// Package logschema reads and checks log schemas written in Panther's log-schema YAML format.
//
// A schema names a log type (schema: Vendor.Type), says how records are parsed (parser: native,
// fastmatch, regex or csv; JSON when absent) and lists the fields of a record with their types,
// indicators and time formats. Load reports every mistake with the file and line it was found on,
// so that a user can fix a custom schema without guessing.
package logschema

import (
	"fmt"
	"strings"
)

// Schema is one log type's schema.
type Schema struct {
	Version      int     `yaml:"version"`
	Schema       string  `yaml:"schema"`
	Description  string  `yaml:"description"`
	ReferenceURL string  `yaml:"referenceURL"`
	Parser       *Parser `yaml:"parser"`
	Fields       []Field `yaml:"fields"`

	// File is the file the schema was read from, if any; Line the line of the schema key.
	File string `yaml:"-"`
	Line int    `yaml:"-"`
}

// Parser selects how a record is turned into fields. At most one member is set; none means JSON.
type Parser struct {
	Native    *NativeParser    `yaml:"native"`
	FastMatch *FastMatchParser `yaml:"fastmatch"`
	Regex     *RegexParser     `yaml:"regex"`
	CSV       *CSVParser       `yaml:"csv"`

	Line int `yaml:"-"` // line of the parser key's value, for error messages
}

// NativeParser names a parser written in Go (for example Linux.Auditd or AWS.CloudTrail).
type NativeParser struct {
	Name string `yaml:"name"`
}

// FastMatchParser matches records against patterns such as '%{remoteAddr} - %{user} [%{time}]'.
type FastMatchParser struct {
	Match         []string `yaml:"match"`
	EmptyValues   []string `yaml:"emptyValues"`
	ExpandFields  Expand   `yaml:"expandFields"`
	TrimSpace     bool     `yaml:"trimSpace"`
	SkipPrefix    string   `yaml:"skipPrefix"`
	RemoveQuotes  bool     `yaml:"removeQuotes"`
	NullValues    []string `yaml:"nullValues"`
	MatchOnlyOnce bool     `yaml:"matchOnlyOnce"`
}

// RegexParser matches records against regular expressions with named groups.
type RegexParser struct {
	Match              []string          `yaml:"match"`
	PatternDefinitions map[string]string `yaml:"patternDefinitions"`
	EmptyValues        []string          `yaml:"emptyValues"`
	ExpandFields       Expand            `yaml:"expandFields"`
	TrimSpace          bool              `yaml:"trimSpace"`
	SkipPrefix         string            `yaml:"skipPrefix"`
}

// CSVParser reads delimiter-separated records.
type CSVParser struct {
	Delimiter    string   `yaml:"delimiter"`
	HasHeader    bool     `yaml:"hasHeader"`
	Columns      []string `yaml:"columns"`
	EmptyValues  []string `yaml:"emptyValues"`
	TrimSpace    bool     `yaml:"trimSpace"`
	SkipPrefix   string   `yaml:"skipPrefix"`
	ExpandFields Expand   `yaml:"expandFields"`
}

// Expand maps a field to a template built from other fields, as in Panther's expandFields.
type Expand map[string]string

// Field is a named value of a record.
type Field struct {
	Name        string `yaml:"name"`
	Required    bool   `yaml:"required"`
	Description string `yaml:"description"`
	Value       `yaml:",inline"`

	Line int `yaml:"-"` // line of the field in its file, for error messages
}

// Value describes the type of a field or of an array's elements.
type Value struct {
	Type Type `yaml:"type"`
	// Fields are an object's fields. On a json value (an Osprey extension) they name keys whose
	// values are scanned for indicators, while the column keeps the whole JSON text.
	Fields         []Field     `yaml:"fields"`
	Element        *Value      `yaml:"element"`
	Indicators     []string    `yaml:"indicators"`
	TimeFormat     string      `yaml:"timeFormat"`
	TimeFormats    []string    `yaml:"timeFormats"`
	IsEventTime    bool        `yaml:"isEventTime"`
	IsEmbeddedJSON bool        `yaml:"isEmbeddedJSON"`
	Validate       *Validation `yaml:"validate"`

	// Transformations, applied to the input before the value is decoded.
	Rename *Rename `yaml:"rename"`
	Concat *Concat `yaml:"concat"`
	Copy   *Copy   `yaml:"copy"`
	Mask   *Mask   `yaml:"mask"`
	Split  *Split  `yaml:"split"`
}

// Validation restricts the values a field accepts; a record with another value does not match.
type Validation struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
	IP    string   `yaml:"ip"`   // "", "ipv4", "ipv6" or "any"
	CIDR  string   `yaml:"cidr"` // "", "ipv4", "ipv6" or "any"
}

// Transformed reports whether the value comes from somewhere else than the key of its name
// (rename, copy, concat or split).
func (v *Value) Transformed() bool {
	return v.Rename != nil || v.Copy != nil || v.Concat != nil || v.Split != nil
}

// Rename takes the field's value from another key of the same object.
type Rename struct {
	From string `yaml:"from"`
}

// Concat joins the values at paths with a separator.
type Concat struct {
	Paths     []string `yaml:"paths"`
	Separator string   `yaml:"separator"`
}

// Copy takes the field's value from another path of the record.
type Copy struct {
	From string `yaml:"from"`
}

// Mask redacts a value or replaces it with a hash.
type Mask struct {
	Type string `yaml:"type"` // "redact" (default), "md5", "sha1", "sha256"
	With string `yaml:"with"` // the redaction text; default "***"
	Salt string `yaml:"salt"`
}

// Split takes one part of a value split by a separator.
type Split struct {
	From      string `yaml:"from"`
	Separator string `yaml:"separator"`
	Index     int    `yaml:"index"`
}

// Type is a field's value type.
type Type string

// The value types of Panther's log schemas.
const (
	TypeString    Type = "string"
	TypeInt       Type = "int"
	TypeSmallInt  Type = "smallint"
	TypeBigInt    Type = "bigint"
	TypeFloat     Type = "float"
	TypeBoolean   Type = "boolean"
	TypeTimestamp Type = "timestamp"
	TypeObject    Type = "object"
	TypeArray     Type = "array"
	TypeJSON      Type = "json"
)

// Scalar reports whether values of the type are not objects or arrays.
func (t Type) Scalar() bool { return t != TypeObject && t != TypeArray }

// Formats returns the time formats of a timestamp value, in the order they are tried.
func (v *Value) Formats() []string {
	if v.TimeFormat != "" {
		return append([]string{v.TimeFormat}, v.TimeFormats...)
	}
	return v.TimeFormats
}

// TableName returns the lake table of a log type: lowercase, with dots as underscores
// (Panther.Audit -> panther_audit).
func TableName(logType string) string {
	var b strings.Builder
	for _, r := range logType {
		switch {
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Error is a mistake found in a schema, with where it was found.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// AtSign is the prefix under which Panther's rows hold a field whose name starts with @: the
// field @timestamp is at_sign_timestamp there (its exports, the events of its rule tests).
const AtSign = "at_sign_"

// PantherKey returns the key Panther's rows give a field named @x, at_sign_x; ok is false for
// other names.
func PantherKey(name string) (key string, ok bool) {
	if rest, ok := strings.CutPrefix(name, "@"); ok && rest != "" {
		return AtSign + rest, true
	}
	return "", false
}

// ReadsKey reports whether a record's key fills the field called name, as the JSON parser reads
// keys: the name without regard to case, or Panther's at_sign_x for a field @x.
func ReadsKey(name, key string) bool {
	if strings.EqualFold(name, key) {
		return true
	}
	rest, ok := strings.CutPrefix(key, AtSign)
	return ok && rest != "" && len(name) == len(rest)+1 && name[0] == '@' && strings.EqualFold(name[1:], rest)
}
