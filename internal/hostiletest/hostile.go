// Package hostiletest builds the inputs of hostile clients for tests: what a sender who means harm
// (or a broken one) would send osprey's sources.
package hostiletest

import (
	"bytes"
	"compress/gzip"
)

// GzipBomb returns a gzip stream of n zero bytes (n a multiple of 1 MiB), about a thousandth of
// that on the wire: members of 1 MiB each, concatenated, which a gzip reader reads as one
// stream.
func GzipBomb(n int) []byte {
	var one bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&one, gzip.BestCompression)
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	return bytes.Repeat(one.Bytes(), n>>20)
}
