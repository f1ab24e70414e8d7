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
	bytes [numClasses][][]byte
	held  int // bytes held in free buffers
	max   int
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
		if free := a.bytes[c]; len(free) > 0 {
			b := free[len(free)-1]
			a.bytes[c] = free[:len(free)-1]
			a.held -= cap(b)
			return b[:0]
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

// offsets views an int32 slice's memory as bytes, and back, so that offsets share the pool.
func int32Bytes(s []int32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*cap(s))[:4*len(s)]
}

func bytesInt32(b []byte) []int32 {
	return unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(b))), cap(b)/4)[:len(b)/4]
}
