package lake

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// A partition file is written as: "PAR1", row groups appended as they are encoded, and at the
// end the footer (Thrift FileMetaData, its length, "PAR1"). The footer's schema, column orders,
// creator and key-value metadata come from an empty file parquet-go writes for the table's
// schema, so that data files describe their columns exactly as the table's schema file does.

var magic = []byte("PAR1")

// maxRowGroups bounds the row groups of a file (a row group's ordinal is a 16-bit integer).
const maxRowGroups = 1<<15 - 1

// fileTemplate returns the footer parquet-go writes for an empty file of the schema.
func fileTemplate(ps *parquet.Schema, signature string) (format.FileMetaData, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[any](&buf, ps, parquet.Compression(codec),
		parquet.CreatedBy("osprey", "", ""), parquet.KeyValueMetadata(signatureKey, signature))
	if err := w.Close(); err != nil {
		return format.FileMetaData{}, err
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		return format.FileMetaData{}, err
	}
	md := *f.Metadata()
	md.RowGroups, md.NumRows = nil, 0
	return md, nil
}

// encoder encodes row groups of one table. It is not safe for concurrent use.
type encoder struct {
	sh *shredder
	cw *chunkWriter
}

func newEncoder(s *arrow.Schema) (*encoder, error) {
	sh, err := newShredder(s)
	if err != nil {
		return nil, err
	}
	return &encoder{sh: sh, cw: newChunkWriter()}, nil
}

// encoderPool keeps the encoders of a table between writes. Unlike a sync.Pool it survives
// garbage collections: an encoder's buffers are sized by the largest row groups it wrote, and
// regrowing them after every collection cost as much as a tenth of the writer's allocations.
type encoderPool struct {
	schema *arrow.Schema
	mu     sync.Mutex
	free   []*encoder
}

// maxIdleEncoders bounds the encoders a table keeps (as many as writers run at once, usually).
var maxIdleEncoders = runtime.GOMAXPROCS(0)

func (p *encoderPool) get() *encoder {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		e := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return e
	}
	p.mu.Unlock()
	e, err := newEncoder(p.schema)
	if err != nil {
		panic("BUG: encoder of a schema that had one: " + err.Error())
	}
	return e
}

func (p *encoderPool) put(e *encoder) {
	p.mu.Lock()
	if len(p.free) < maxIdleEncoders {
		p.free = append(p.free, e)
	}
	p.mu.Unlock()
}

// rowGroup is an encoded row group: its pages and its metadata, with page offsets relative to
// the start of data. data is the encoder's buffer: it is valid until the encoder's next use.
type rowGroup struct {
	data []byte
	meta format.RowGroup
	dict []bool // whether each column chunk starts with a dictionary page
}

// placed returns the row group's metadata for its data written at offset off of a file, as
// the file's ordinal'th row group.
func (rg rowGroup) placed(off int64, ordinal int) format.RowGroup {
	meta := rg.meta
	meta.FileOffset = off
	meta.Ordinal = int16(ordinal)
	meta.Columns = append([]format.ColumnChunk(nil), rg.meta.Columns...)
	for i := range meta.Columns {
		md := &meta.Columns[i].MetaData
		md.DataPageOffset += off
		if rg.dict[i] {
			md.DictionaryPageOffset += off
		}
	}
	return meta
}

// encode encodes the listed rows of rec (all rows when rows is nil) as one row group.
func (e *encoder) encode(cols []column, rec arrow.RecordBatch, rows []int32) (rowGroup, error) {
	if len(cols) != len(e.sh.leaves) {
		panic(fmt.Sprintf("BUG: %d leaf columns for %d shredded leaves", len(cols), len(e.sh.leaves)))
	}
	e.sh.shred(rec, rows)
	defer e.sh.release()
	n := rec.NumRows()
	if rows != nil {
		n = int64(len(rows))
	}
	e.cw.out = e.cw.out[:0]
	rg := rowGroup{
		meta: format.RowGroup{NumRows: n, Columns: make([]format.ColumnChunk, len(cols))},
		dict: make([]bool, len(cols)),
	}
	for i := range cols {
		cc, dict, err := e.cw.encodeChunk(&cols[i], e.sh.leaves[i])
		if err != nil {
			return rowGroup{}, fmt.Errorf("column %v: %w", cols[i].path, err)
		}
		rg.dict[i] = dict
		rg.meta.Columns[i] = cc
		rg.meta.TotalByteSize += cc.MetaData.TotalUncompressedSize
		rg.meta.TotalCompressedSize += cc.MetaData.TotalCompressedSize
	}
	rg.data = e.cw.out
	return rg, nil
}

// pqFile is a Parquet file being written.
type pqFile struct {
	f         *os.File
	off       int64 // bytes written
	rows      int64
	rowGroups []format.RowGroup
	broken    bool // a write failed: the end of the file must be cut at off
}

func createPQFile(f *os.File) (*pqFile, error) {
	if _, err := f.Write(magic); err != nil {
		return nil, err
	}
	return &pqFile{f: f, off: int64(len(magic))}, nil
}

// append writes a row group at the end of the file.
func (p *pqFile) append(rg rowGroup) error {
	if len(p.rowGroups) >= maxRowGroups {
		return errors.New("too many row groups in one file")
	}
	if _, err := p.f.WriteAt(rg.data, p.off); err != nil {
		p.broken = true
		return err
	}
	meta := rg.placed(p.off, len(p.rowGroups))
	p.off += int64(len(rg.data))
	p.rows += meta.NumRows
	p.rowGroups = append(p.rowGroups, meta)
	return nil
}

// finish writes the footer and closes the file; it returns the file's size.
func (p *pqFile) finish(template format.FileMetaData) (int64, error) {
	md := template
	md.NumRows = p.rows
	md.RowGroups = p.rowGroups
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		p.f.Close()
		return 0, fmt.Errorf("encode footer: %w", err)
	}
	footer = binary.LittleEndian.AppendUint32(footer, uint32(len(footer)))
	footer = append(footer, magic...)
	if _, err := p.f.WriteAt(footer, p.off); err != nil {
		p.f.Close()
		return 0, err
	}
	size := p.off + int64(len(footer))
	if p.broken {
		if err := p.f.Truncate(size); err != nil {
			p.f.Close()
			return 0, err
		}
	}
	return size, p.f.Close()
}
