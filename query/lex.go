package query

import (
	"fmt"
	"strings"
)

// tokKind is the kind of a SQL token.
type tokKind int

const (
	tokSpace   tokKind = iota
	tokComment         // -- ... or /* ... */
	tokIdent           // a bare word: keyword or identifier
	tokQuoted          // "quoted identifier"
	tokString          // 'string', E'string', $tag$string$tag$
	tokNumber
	tokPunct // one character: ( ) , ; . and operators
)

type token struct {
	kind       tokKind
	start, end int // byte offsets in the statement
}

// lex splits SQL into tokens; it never fails: an unterminated string or comment runs to the end.
func lex(s string) []token {
	var toks []token
	i := 0
	for i < len(s) {
		start := i
		c := s[i]
		var k tokKind
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			for i < len(s) && strings.IndexByte(" \t\n\r\f", s[i]) >= 0 {
				i++
			}
			k = tokSpace
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			// DuckDB's scanner (PostgreSQL's) ends a line comment at \n or \r.
			if j := strings.IndexAny(s[i:], "\n\r"); j >= 0 {
				i += j
			} else {
				i = len(s)
			}
			k = tokComment
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			i = endComment(s, i)
			k = tokComment
		case c == '\'':
			i = endQuoted(s, i, '\'')
			k = tokString
		case (c == 'e' || c == 'E') && i+1 < len(s) && s[i+1] == '\'':
			i = endEscaped(s, i+1)
			k = tokString
		case c == '"':
			i = endQuoted(s, i, '"')
			k = tokQuoted
		case c == '$' && dollarTag(s[i:]) != "":
			tag := dollarTag(s[i:])
			if j := strings.Index(s[i+len(tag):], tag); j >= 0 {
				i += len(tag) + j + len(tag)
			} else {
				i = len(s)
			}
			k = tokString
		case isIdentStart(c):
			for i < len(s) && isIdentPart(s[i]) {
				i++
			}
			k = tokIdent
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			for i < len(s) && (isDigit(s[i]) || s[i] == '.') {
				i++
			}
			// An exponent only with its digits, as DuckDB's scanner has it: in 0E--x the
			// number is 0 and -- starts a comment.
			if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
				j := i + 1
				if j < len(s) && (s[j] == '-' || s[j] == '+') {
					j++
				}
				if j < len(s) && isDigit(s[j]) {
					i = j
					for i < len(s) && isDigit(s[i]) {
						i++
					}
				}
			}
			k = tokNumber
		default:
			i++
			k = tokPunct
		}
		toks = append(toks, token{kind: k, start: start, end: i})
	}
	return toks
}

// endQuoted returns the index after the quoted text starting at s[i] (a doubled quote is an
// escaped quote).
func endQuoted(s string, i int, q byte) int {
	i++
	for i < len(s) {
		if s[i] == q {
			if i+1 < len(s) && s[i+1] == q {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(s)
}

// endComment returns the index after the block comment starting at s[i]; block comments nest.
func endComment(s string, i int) int {
	depth := 0
	for i < len(s) {
		switch {
		case strings.HasPrefix(s[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(s[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return len(s)
}

// endEscaped returns the index after the E'...' string whose quote is s[i]: a backslash escapes
// the next character, and a doubled quote is a quote.
func endEscaped(s string, i int) int {
	i++
	for i < len(s) {
		switch s[i] {
		case '\\':
			i += 2
			continue
		case '\'':
			if i+1 < len(s) && s[i+1] == '\'' {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(s)
}

// dollarTag returns the $tag$ that starts s, or "". A tag is empty ($$) or an identifier that
// does not start with a digit and has no '$' ($1 is a parameter, as in DuckDB's scanner).
func dollarTag(s string) string {
	for j := 1; j < len(s); j++ {
		switch {
		case s[j] == '$':
			return s[:j+1]
		case j == 1 && !isIdentStart(s[j]), !isIdentStart(s[j]) && !isDigit(s[j]):
			return ""
		}
	}
	return ""
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isIdentPart reports whether c continues a bare word: DuckDB's identifiers may hold '$' after
// their first character (a$b$c is one identifier, not a dollar-quoted string).
func isIdentPart(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

// position returns "line L, column C" of a byte offset.
func position(s string, off int) string {
	line := 1 + strings.Count(s[:off], "\n")
	col := off - strings.LastIndexByte(s[:off], '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

// SplitStatements splits SQL text at top-level semicolons, dropping empty statements.
func SplitStatements(s string) []string {
	var out []string
	start := 0
	for _, t := range lex(s) {
		if t.kind == tokPunct && s[t.start] == ';' {
			if stmt := strings.TrimSpace(s[start:t.start]); !onlyComments(stmt) {
				out = append(out, stmt)
			}
			start = t.end
		}
	}
	if stmt := strings.TrimSpace(s[start:]); !onlyComments(stmt) {
		out = append(out, stmt)
	}
	return out
}

func onlyComments(s string) bool {
	for _, t := range lex(s) {
		if t.kind != tokSpace && t.kind != tokComment {
			return false
		}
	}
	return true
}

// Complete reports whether SQL text ends a statement: its last token other than space or a
// comment is a semicolon outside strings and comments.
func Complete(s string) bool {
	toks := lex(s)
	for i := len(toks) - 1; i >= 0; i-- {
		t := toks[i]
		switch t.kind {
		case tokSpace, tokComment:
			continue
		case tokPunct:
			return s[t.start] == ';'
		default:
			return false
		}
	}
	return false
}
