package query

import (
	"context"
	"strings"
)

// Column is a column of a table or view of the session, or a field of a struct column (Name is
// then the dotted path, such as actor.name).
type Column struct {
	Schema, Table, Name, Type string
}

// Catalog lists the columns of the lake's views, nested struct fields included, in table order.
func (d *DB) Catalog(ctx context.Context) ([]Column, error) {
	if err := d.Refresh(ctx); err != nil {
		return nil, err
	}
	rows, err := d.db.QueryContext(ctx, `SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns()
		WHERE schema_name LIKE 'panther%' AND NOT internal ORDER BY schema_name, table_name, column_index`)
	if err != nil {
		return nil, d.explainError(err)
	}
	defer rows.Close()
	var cols []Column
	for rows.Next() {
		var c Column
		if err := rows.Scan(&c.Schema, &c.Table, &c.Name, &c.Type); err != nil {
			return nil, err
		}
		cols = append(cols, c)
		if t, err := parseType(c.Type); err == nil {
			cols = appendFields(cols, c, t)
		}
	}
	return cols, rows.Err()
}

func appendFields(cols []Column, parent Column, t *colType) []Column {
	if t.name != "STRUCT" {
		return cols
	}
	for _, f := range t.fields {
		c := Column{Schema: parent.Schema, Table: parent.Table, Name: parent.Name + "." + f.name, Type: typeString(f.typ)}
		cols = append(cols, c)
		cols = appendFields(cols, c, f.typ)
	}
	return cols
}

func typeString(t *colType) string {
	switch t.name {
	case "LIST":
		return typeString(t.elem) + "[]"
	case "STRUCT":
		parts := make([]string, len(t.fields))
		for i, f := range t.fields {
			parts[i] = f.name + " " + typeString(f.typ)
		}
		return "STRUCT(" + strings.Join(parts, ", ") + ")"
	}
	return t.name
}

// TokenKind is the kind of a token of SQL text, for highlighting.
type TokenKind int

// Kinds of tokens.
const (
	TokenSpace TokenKind = iota
	TokenComment
	TokenWord // keyword or identifier
	TokenQuoted
	TokenString
	TokenNumber
	TokenPunct
)

// Token is a token of SQL text: its kind and byte offsets.
type Token struct {
	Kind       TokenKind
	Start, End int
}

// Tokens splits SQL text into tokens the way macro expansion does.
func Tokens(s string) []Token {
	toks := lex(s)
	out := make([]Token, len(toks))
	for i, t := range toks {
		out[i] = Token{Kind: TokenKind(t.kind), Start: t.start, End: t.end}
	}
	return out
}
