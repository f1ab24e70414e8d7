package objcache

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

const (
	// hashLen is the length of the hex SHA-256 that starts every object's file name.
	hashLen = 2 * sha256.Size
	// tailMax bounds the readable tail of a file name, in bytes.
	tailMax = 48
	// tempPrefix starts the name of a file being downloaded.
	tempPrefix = "tmp-"
	// lockName is the file whose flock serializes eviction passes of all processes.
	lockName = "evict.lock"
)

// Name returns the name of the file that holds the object at key in a cache directory: the
// hex SHA-256 of the key, a dash and the last bytes (at most 48) of the key's last path
// element, bytes other than [A-Za-z0-9._-] replaced by '_'. The tail keeps the extension
// (".parquet") and makes a directory listing readable; the hash alone identifies the key.
// Whatever the key, the name has no '/' or NUL, is never "." or "..", and is at most 113 bytes.
func Name(key string) string {
	sum := sha256.Sum256([]byte(key))
	tail := key[strings.LastIndexByte(key, '/')+1:]
	if len(tail) > tailMax {
		tail = tail[len(tail)-tailMax:]
	}
	b := make([]byte, 0, hashLen+1+len(tail))
	b = hex.AppendEncode(b, sum[:])
	if tail == "" {
		return string(b)
	}
	b = append(b, '-')
	for i := 0; i < len(tail); i++ {
		c := tail[i]
		if !safeByte(c) {
			c = '_'
		}
		b = append(b, c)
	}
	return string(b)
}

func safeByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// isObjectName reports whether a directory entry's name is one Name could return: what an
// eviction pass counts and may remove. Anything else in the directory is left alone.
func isObjectName(name string) bool {
	if len(name) < hashLen || len(name) > hashLen+1+tailMax {
		return false
	}
	for i := 0; i < hashLen; i++ {
		c := name[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	if len(name) == hashLen {
		return true
	}
	if name[hashLen] != '-' || len(name) == hashLen+1 {
		return false
	}
	for i := hashLen + 1; i < len(name); i++ {
		if !safeByte(name[i]) {
			return false
		}
	}
	return true
}
