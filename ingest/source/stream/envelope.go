package stream

import (
	"errors"
	"fmt"
)

// SplitEnvelope splits a JSON document whose first key is one of keys and holds an array, such
// as CloudTrail's {"Records": [{...}, {...}]}, into the array's elements (slices of doc). ok is
// false when doc is not such a document; err reports an envelope that is not valid JSON as far
// as it was read (the elements before the fault are returned).
func SplitEnvelope(doc []byte, keys []string) (elems [][]byte, ok bool, err error) {
	i := skipWS(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return nil, false, nil
	}
	i = skipWS(doc, i+1)
	if i >= len(doc) || doc[i] != '"' {
		return nil, false, nil
	}
	end := stringEnd(doc, i)
	if end < 0 {
		return nil, false, nil
	}
	key := doc[i+1 : end-1]
	found := false
	for _, k := range keys {
		if string(key) == k {
			found = true
			break
		}
	}
	if !found {
		return nil, false, nil
	}
	i = skipWS(doc, end)
	if i >= len(doc) || doc[i] != ':' {
		return nil, false, nil
	}
	i = skipWS(doc, i+1)
	if i >= len(doc) || doc[i] != '[' {
		return nil, false, nil
	}
	i = skipWS(doc, i+1)
	if i < len(doc) && doc[i] == ']' {
		return nil, true, envelopeRest(doc, i+1)
	}
	for {
		end := valueEnd(doc, i)
		if end < 0 {
			return elems, true, fmt.Errorf("envelope %q: invalid JSON at byte %d", key, i)
		}
		elems = append(elems, doc[i:end])
		i = skipWS(doc, end)
		if i >= len(doc) {
			return elems, true, fmt.Errorf("envelope %q: unexpected end", key)
		}
		switch doc[i] {
		case ',':
			i = skipWS(doc, i+1)
		case ']':
			return elems, true, envelopeRest(doc, i+1)
		default:
			return elems, true, fmt.Errorf("envelope %q: want ',' or ']' at byte %d", key, i)
		}
	}
}

var errEnvelopeEnd = errors.New("envelope: invalid JSON after the records")

// envelopeRest checks what follows the array: other members, then the closing brace.
func envelopeRest(doc []byte, i int) error {
	i = skipWS(doc, i)
	for i < len(doc) && doc[i] == ',' {
		i = skipWS(doc, i+1)
		end := stringEnd(doc, i)
		if end < 0 {
			return errEnvelopeEnd
		}
		i = skipWS(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return errEnvelopeEnd
		}
		if i = valueEnd(doc, skipWS(doc, i+1)); i < 0 {
			return errEnvelopeEnd
		}
		i = skipWS(doc, i)
	}
	if i >= len(doc) || doc[i] != '}' || skipWS(doc, i+1) != len(doc) {
		return errEnvelopeEnd
	}
	return nil
}

func skipWS(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string starting at d[i] ('"'), or -1.
func stringEnd(d []byte, i int) int {
	if i >= len(d) || d[i] != '"' {
		return -1
	}
	for j := i + 1; j < len(d); j++ {
		switch d[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// valueEnd returns the index after the JSON value starting at d[i], or -1. It follows strings
// and brackets only: the value's grammar is checked by whoever parses it.
func valueEnd(d []byte, i int) int {
	if i >= len(d) {
		return -1
	}
	switch d[i] {
	case '"':
		return stringEnd(d, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(d); j++ {
			switch d[j] {
			case '"':
				end := stringEnd(d, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	// A number or a literal: up to a delimiter.
	j := i
	for j < len(d) {
		switch d[j] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}

// TopKeys appends the keys of a JSON object's top level to dst (their raw text, escapes left as
// they are); ok is false when doc is not a well-formed object as far as the scan sees.
func TopKeys(doc []byte, dst [][]byte) (keys [][]byte, ok bool) {
	i := skipWS(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return dst, false
	}
	i = skipWS(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return dst, true
	}
	for i < len(doc) {
		end := stringEnd(doc, i)
		if end < 0 {
			return dst, false
		}
		dst = append(dst, doc[i+1:end-1])
		i = skipWS(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return dst, false
		}
		i = skipWS(doc, i+1)
		if end = valueEnd(doc, i); end <= i { // none, or an empty value
			return dst, false
		}
		i = skipWS(doc, end)
		if i >= len(doc) {
			return dst, false
		}
		switch doc[i] {
		case ',':
			i = skipWS(doc, i+1)
		case '}':
			return dst, true
		default:
			return dst, false
		}
	}
	return dst, false
}
