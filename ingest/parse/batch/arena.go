package batch

import (
	"math/bits"
	"unsafe"
)

// Arena recycles the large buffers of string columns (their bytes and offsets) between
// builders. A builder grows a buffer by taking a larger one from the arena and, once the row is
// ended, giving back the smaller; Recycle gives back the buffers of a batch the sink is done with.
// Without it, every builder of a busy ingest grows its buffers from nothing by doubling, which
// allocates (and the collector scans and the kernel zeroes) several times the data it holds.
//
// An Arena is not safe for concurrent use: give each goroutine its own, shared by its builders.
type Arena struct {
	bytes     [numClasses][][]byte
	held      int // bytes held in free buffers
	max       int
	consts    map[string]*constant // columns of repeated names (p_log_type...), shared by builders
	nullFiles nullFiles            // the all-null p_source_file column, shared by builders
}

// constant returns the shared constant column of s.
func (a *Arena) constant(s []byte) *constant {
	c, ok := a.consts[string(s)]
	if !ok {
		if a.consts == nil {
			a.consts = map[string]*constant{}
		}
		c = &constant{}
		a.consts[string(s)] = c
	}
	return c
}

// Buffers are recycled in power-of-two size classes from minClass bytes; smaller buffers are
// left to append.
const (
	minClassShift = 12 // 4 KiB
	numClasses    = 15 // up to 64 MiB
	minClass      = 1 << minClassShift
)

// NewArena returns an arena that keeps up to max bytes of free buffers.
func NewArena(max int) *Arena { return &Arena{max: max} }

func class(n int) int {
	if n <= minClass {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}

// getBytes returns an empty buffer of capacity at least n.
func (a *Arena) getBytes(n int) []byte {
	c := class(n)
	if c < numClasses {
		// A buffer of the class, else one of the next two: a little more memory beats an
		// allocation the kernel must zero.
		for k := c; k < min(c+3, numClasses); k++ {
			if free := a.bytes[k]; len(free) > 0 {
				b := free[len(free)-1]
				a.bytes[k] = free[:len(free)-1]
				a.held -= cap(b)
				return b[:0]
			}
		}
		return make([]byte, 0, minClass<<c)
	}
	return make([]byte, 0, n)
}

// putBytes gives a buffer back.
func (a *Arena) putBytes(b []byte) {
	if cap(b) < minClass || a.held+cap(b) > a.max {
		return
	}
	c := class(cap(b))
	if c >= numClasses || minClass<<c != cap(b) {
		if c == 0 || c > numClasses {
			return
		}
		c-- // a buffer between classes serves requests of the class below
	}
	a.bytes[c] = append(a.bytes[c], b[:0])
	a.held += cap(b)
}

// asBytes views a slice of fixed-width values as bytes, and fromBytes back, so that offsets and
// numbers share the pool with string data. Arena buffers are at least minClass bytes, which Go
// allocates aligned to 8 bytes.
func asBytes[T int16 | int32 | int64 | float64](s []T) []byte {
	size := int(unsafe.Sizeof(T(0)))
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), size*cap(s))[:size*len(s)]
}

func fromBytes[T int16 | int32 | int64 | float64](b []byte) []T {
	size := int(unsafe.Sizeof(T(0)))
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), cap(b)/size)[:len(b)/size]
}

// grow returns s with room for n more values, moved to a buffer from the builder's arena of at
// least twice its capacity; the old buffer is retired.
func grow[T int16 | int32 | int64 | float64](b *Builder, s []T, n int) []T {
	size := int(unsafe.Sizeof(T(0)))
	buf := fromBytes[T](b.arena.getBytes(size * max(2*cap(s), len(s)+n)))
	buf = append(buf, s...)
	b.retire(asBytes(s))
	return buf
}

// growBytes is grow for bytes.
func growBytes(b *Builder, s []byte, n int) []byte {
	buf := b.arena.getBytes(max(2*cap(s), len(s)+n))
	buf = append(buf, s...)
	b.retire(s)
	return buf
}
