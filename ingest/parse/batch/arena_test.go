package batch

import (
	"testing"
	"unsafe"
)

// TestClass checks the size classes: class c serves requests up to 4 KiB << c.
func TestClass(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{0, 0}, {1, 0}, {4096, 0}, {4097, 1}, {8192, 1}, {8193, 2}, {16384, 2},
		{1 << 20, 8}, {1<<20 + 1, 9}, {64 << 20, 14}, {64<<20 + 1, 15},
	} {
		if got := class(tc.n); got != tc.want {
			t.Errorf("class(%d) = %d, want %d", tc.n, got, tc.want)
		}
		if tc.n > 0 && tc.want < numClasses && minClass<<tc.want < tc.n {
			t.Errorf("class %d (%d bytes) cannot hold %d bytes", tc.want, minClass<<tc.want, tc.n)
		}
	}
}

func addr(b []byte) *byte { return unsafe.SliceData(b) }

// TestArena checks that the arena hands out empty buffers large enough for the request, gives
// a returned buffer back to a request it can serve (and not to one it cannot), ignores small
// buffers and keeps no more than its limit.
func TestArena(t *testing.T) {
	a := NewArena(1 << 20)
	for _, n := range []int{0, 1, 4096, 5000, 100000} {
		b := a.getBytes(n)
		if len(b) != 0 || cap(b) < n || cap(b) < minClass {
			t.Errorf("getBytes(%d): len %d cap %d", n, len(b), cap(b))
		}
	}

	// An exact class buffer comes back for requests of its class.
	b := a.getBytes(8000) // class 1: 8 KiB
	b = append(b, "data"...)
	a.putBytes(b)
	if a.held != 8192 {
		t.Errorf("held = %d after returning 8 KiB", a.held)
	}
	if got := a.getBytes(4097); addr(got) != addr(b) || len(got) != 0 {
		t.Errorf("getBytes(4097) did not return the free 8 KiB buffer emptied")
	}
	if a.held != 0 {
		t.Errorf("held = %d after taking the buffer back", a.held)
	}

	// A buffer between classes serves the class below it only.
	odd := make([]byte, 0, 6000)
	a.putBytes(odd)
	if got := a.getBytes(5000); addr(got) == addr(odd) {
		t.Errorf("a 6000-byte buffer served a 5000-byte request from class 1 (8 KiB)")
	}
	if got := a.getBytes(4096); addr(got) != addr(odd) || cap(got) < 4096 {
		t.Errorf("the 6000-byte buffer did not serve a 4 KiB request")
	}

	// Small buffers are not kept.
	a.putBytes(make([]byte, 0, 100))
	a.putBytes(nil)
	if a.held != 0 {
		t.Errorf("held = %d after returning small buffers", a.held)
	}

	// The arena keeps up to its limit.
	small := NewArena(3 * 4096)
	for range 5 {
		small.putBytes(make([]byte, 0, 4096))
	}
	if small.held != 3*4096 || len(small.bytes[0]) != 3 {
		t.Errorf("held %d in %d buffers, want 3 buffers", small.held, len(small.bytes[0]))
	}
	for range 3 {
		small.getBytes(10)
	}
	if small.held != 0 {
		t.Errorf("held = %d after taking every buffer", small.held)
	}
	if got := small.getBytes(10); cap(got) != minClass {
		t.Errorf("a new buffer has %d bytes, want %d", cap(got), minClass)
	}
}
