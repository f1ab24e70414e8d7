package objcache

import (
	"context"
	"fmt"
	"io"
	"testing"
)

// BenchmarkHit is the cost a query pays per cached file it reads: Get and release.
//
//	go test -run '^$' -bench . ./lake/objcache
func BenchmarkHit(b *testing.B) {
	c, err := Open(b.TempDir(), 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := content("hit", 1<<10)
	fetch := func(ctx context.Context, w io.Writer) (Checksum, error) {
		_, err := w.Write(body)
		return sha(body), err
	}
	ctx := context.Background()
	for b.Loop() {
		_, release, err := c.Get(ctx, "s3://b/hit.parquet", int64(len(body)), fetch)
		if err != nil {
			b.Fatal(err)
		}
		release()
	}
}

// BenchmarkMiss downloads 4 MiB objects from memory: writing, reading back for the checksum,
// publishing, and evicting as the cache stays full.
func BenchmarkMiss(b *testing.B) {
	for _, a := range []Algorithm{SHA256, CRC32C, CRC64NVME} {
		b.Run(string(a), func(b *testing.B) {
			c, err := Open(b.TempDir(), 64<<20)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			body := content("miss", 4<<20)
			h, _ := a.new()
			h.Write(body)
			sum := Checksum{Algorithm: a, Sum: h.Sum(nil)}
			fetch := func(ctx context.Context, w io.Writer) (Checksum, error) {
				_, err := w.Write(body)
				return sum, err
			}
			ctx := context.Background()
			b.SetBytes(int64(len(body)))
			i := 0
			for b.Loop() {
				i++
				_, release, err := c.Get(ctx, fmt.Sprintf("s3://b/%d.parquet", i), int64(len(body)), fetch)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
	}
}
