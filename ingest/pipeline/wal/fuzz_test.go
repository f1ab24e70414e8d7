package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzSegment opens arbitrary bytes as the log's only segment. Open and Read never panic;
// Open either refuses the log or keeps a prefix of whole frames (cutting a torn tail), and
// every entry Read returns, encoded again, is the frame the file holds. When fixCRC is set the
// checksums of the frames are put right first, so that the fuzzer gets past them to the
// payloads.
func FuzzSegment(f *testing.F) {
	var seg []byte
	for i := range 6 {
		seg = appendFrame(seg, uint64(i), entry(i))
	}
	f.Add(seg, false)
	f.Add(seg[:len(seg)-5], false)
	f.Add(seg, true)
	f.Add(appendFrame(nil, 0, Entry{}), true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, data []byte, fixCRC bool) {
		if fixCRC {
			data = fixChecksums(bytes.Clone(data))
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "00000000000000000000.wal")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, Options{})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt or success", err)
			}
			return
		}
		defer l.Close()
		kept, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, kept) {
			t.Fatalf("Open left %d bytes that are not a prefix of the segment", len(kept))
		}
		n := l.Next()
		if n == 0 {
			if len(kept) != 0 {
				t.Fatalf("no entry, but %d bytes kept", len(kept))
			}
			return
		}
		var again []byte
		errDone := errors.New("done")
		err = l.Read(context.Background(), 0, func(seq uint64, e Entry) error {
			again = appendFrame(again, seq, e)
			if seq == n-1 {
				return errDone
			}
			return nil
		})
		switch {
		case errors.Is(err, ErrCorrupt):
			return // a payload that does not decode: refused when read
		case !errors.Is(err, errDone):
			t.Fatalf("Read: %v", err)
		}
		// Frames may spell a length as a longer varint than appendFrame writes: compare the
		// entries then.
		if !bytes.Equal(again, kept) && !sameEntries(t, again, kept) {
			t.Fatalf("entries read back differ from the segment's frames")
		}
	})
}

// FuzzRoundTrip appends entries made of arbitrary strings and records to a log, reopens it and
// reads them back: every entry comes back intact, in order.
func FuzzRoundTrip(f *testing.F) {
	f.Add("src", []byte("a\xffb\xff\xffc"), "", "", "")
	f.Add("", []byte{}, "bucket", "key/1", `{"from":1}`)
	f.Add("s", []byte("\xff"), "", "", "c")
	f.Fuzz(func(t *testing.T, source string, records []byte, bucket, key, cursor string) {
		var recs [][]byte
		if len(records) > 0 {
			recs = bytes.Split(records, []byte{0xff})
		}
		entries := []Entry{
			{Source: source, Records: recs, Bucket: bucket, Key: key, Cursor: cursor},
			{Source: source, Records: recs},
			{Source: cursor, Records: [][]byte{[]byte(key)}, Cursor: bucket},
		}
		dir := t.TempDir()
		l, err := Open(dir, Options{SegmentSize: 64})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if _, err := l.Append(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if l, err = Open(dir, Options{SegmentSize: 64}); err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var got []Entry
		errDone := errors.New("done")
		err = l.Read(context.Background(), 0, func(seq uint64, e Entry) error {
			e.Records = cloneRecords(e.Records)
			got = append(got, e)
			if len(got) == len(entries) {
				return errDone
			}
			return nil
		})
		if !errors.Is(err, errDone) {
			t.Fatalf("Read: %v", err)
		}
		for i := range entries {
			if !sameEntry(got[i], entries[i]) {
				t.Errorf("entry %d: got %+q, want %+q", i, got[i], entries[i])
			}
		}
	})
}

// fixChecksums walks data as frames and writes each frame's right CRC.
func fixChecksums(data []byte) []byte {
	for off := 0; off+8 <= len(data); {
		size := int(binary.LittleEndian.Uint32(data[off:]))
		if size < 8 || size > len(data)-off-8 {
			break
		}
		frame := data[off+8 : off+8+size]
		binary.LittleEndian.PutUint32(data[off+4:], crc32.Checksum(frame, crcTable))
		off += 8 + size
	}
	return data
}

// sameEntries compares the entries of two runs of frames.
func sameEntries(t *testing.T, a, b []byte) bool {
	t.Helper()
	ea, eb := frames(t, a), frames(t, b)
	if len(ea) != len(eb) {
		return false
	}
	for i := range ea {
		if !sameEntry(ea[i], eb[i]) {
			return false
		}
	}
	return true
}

func frames(t *testing.T, b []byte) []Entry {
	t.Helper()
	var out []Entry
	for len(b) >= 16 {
		size := int(binary.LittleEndian.Uint32(b))
		e, err := decode(b[16 : 8+size])
		if err != nil {
			t.Fatalf("a frame read back does not decode: %v", err)
		}
		out = append(out, e)
		b = b[8+size:]
	}
	return out
}

// sameEntry compares entries, an empty list of records and none being the same.
func sameEntry(a, b Entry) bool {
	if len(a.Records) == 0 && len(b.Records) == 0 {
		a.Records, b.Records = nil, nil
	}
	for i := range a.Records {
		if len(a.Records[i]) == 0 {
			a.Records[i] = nil
		}
	}
	for i := range b.Records {
		if len(b.Records[i]) == 0 {
			b.Records[i] = nil
		}
	}
	return reflect.DeepEqual(a, b)
}

func cloneRecords(rs [][]byte) [][]byte {
	out := make([][]byte, len(rs))
	for i, r := range rs {
		out[i] = bytes.Clone(r)
	}
	return out
}
