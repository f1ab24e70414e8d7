package objcache

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"strings"
)

// Algorithm names a checksum an object store reports for an object's content.
type Algorithm string

// The algorithms S3 reports: its x-amz-checksum-* values (SHA256, SHA1, CRC32, CRC32C,
// CRC64NVME) and the ETag of an object uploaded in one part without SSE-KMS or SSE-C (MD5).
const (
	SHA256    Algorithm = "sha256"
	SHA1      Algorithm = "sha1"
	MD5       Algorithm = "md5"
	CRC32     Algorithm = "crc32"
	CRC32C    Algorithm = "crc32c"
	CRC64NVME Algorithm = "crc64nvme"
)

// crc64NVME is the NVMe CRC-64 polynomial, reversed as crc64.MakeTable wants it (the AWS SDK's
// constant).
const crc64NVME = 0x9a6c9329ac4bc9b5

var (
	crc32cTable = crc32.MakeTable(crc32.Castagnoli)
	crc64Table  = crc64.MakeTable(crc64NVME)
)

func (a Algorithm) new() (hash.Hash, error) {
	switch a {
	case SHA256:
		return sha256.New(), nil
	case SHA1:
		return sha1.New(), nil
	case MD5:
		return md5.New(), nil
	case CRC32:
		return crc32.NewIEEE(), nil
	case CRC32C:
		return crc32.New(crc32cTable), nil
	case CRC64NVME:
		return crc64.New(crc64Table), nil
	}
	return nil, fmt.Errorf("checksum algorithm %q: %w", string(a), ErrAlgorithm)
}

// Checksum is what the store says the digest of an object's whole content is. The zero
// Checksum says the store gave none: the object's size is still verified, and Stats counts the
// download as Unverified.
type Checksum struct {
	Algorithm Algorithm
	Sum       []byte // the digest; CRCs big-endian, as S3 encodes them
}

// IsZero reports whether c is the zero Checksum (no checksum).
func (c Checksum) IsZero() bool { return c.Algorithm == "" && len(c.Sum) == 0 }

// String returns "algorithm:hex digest", or "none".
func (c Checksum) String() string {
	if c.IsZero() {
		return "none"
	}
	return string(c.Algorithm) + ":" + hex.EncodeToString(c.Sum)
}

// S3Checksum reads a checksum as S3 reports it in GetObject's and HeadObject's ChecksumSHA256,
// ChecksumSHA1, ChecksumCRC32, ChecksumCRC32C and ChecksumCRC64NVME: the base64 of the
// digest. A composite checksum of a multipart upload ("<base64>-<parts>", a checksum of the
// parts' checksums) is not a digest of the content: ErrComposite.
func S3Checksum(a Algorithm, value string) (Checksum, error) {
	h, err := a.new()
	if err != nil {
		return Checksum{}, err
	}
	if strings.Contains(value, "-") {
		return Checksum{}, fmt.Errorf("%s checksum %q: %w", a, value, ErrComposite)
	}
	sum, err := base64.StdEncoding.DecodeString(value)
	if err != nil || len(sum) != h.Size() {
		return Checksum{}, fmt.Errorf("%s checksum %q: not the base64 of %d bytes", a, value, h.Size())
	}
	return Checksum{Algorithm: a, Sum: sum}, nil
}

// ETagMD5 reads an S3 ETag as the MD5 of the content when it has the form of one (32 hex
// digits, quoted or not); ok is false for a multipart ETag ("<hex>-<parts>"). Only a caller that
// knows the bucket's objects are not encrypted with SSE-KMS or SSE-C should use it: their ETags
// have the same form and are not MD5s. Prefer S3Checksum where the store keeps checksums.
func ETagMD5(etag string) (c Checksum, ok bool) {
	etag = strings.Trim(etag, `"`)
	if len(etag) != 2*md5.Size {
		return Checksum{}, false
	}
	sum, err := hex.DecodeString(etag)
	if err != nil {
		return Checksum{}, false
	}
	return Checksum{Algorithm: MD5, Sum: sum}, true
}

// verify reports whether h's digest is the checksum's.
func (c Checksum) matches(h hash.Hash) bool {
	return bytes.Equal(h.Sum(nil), c.Sum)
}
