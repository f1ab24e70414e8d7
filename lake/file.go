package lake

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// FileWriter writes Arrow record batches as one Parquet file, outside any lake: query results
// (`osprey sql --format parquet`) and exports. Files are encoded as the lake's data files are
// (see the package documentation), and written front to back, so that w can be a pipe or an
// HTTP response. The schema must use the lake's types: strings, int16/32/64, float64, boolean,
// microsecond timestamps, structs and lists of these.
type FileWriter struct {
	w        io.Writer
	schema   *arrow.Schema
	template format.FileMetaData
	enc      *encoder
	cols     []column // chosen from the first batch
	off      int64
	rows     int64
	groups   []format.RowGroup
	err      error
}

// NewFileWriter starts a Parquet file of the schema on w.
func NewFileWriter(w io.Writer, s *arrow.Schema) (*FileWriter, error) {
	ps, err := ParquetSchema(s)
	if err != nil {
		return nil, err
	}
	template, err := fileTemplate(ps, Signature(s))
	if err != nil {
		return nil, err
	}
	enc, err := newEncoder(s)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(magic); err != nil {
		return nil, err
	}
	return &FileWriter{w: w, schema: s, template: template, enc: enc, off: int64(len(magic))}, nil
}

// Write adds a record batch's rows as one row group.
func (fw *FileWriter) Write(rec arrow.RecordBatch) error {
	if fw.err != nil {
		return fw.err
	}
	if rec.NumRows() == 0 {
		return nil
	}
	if !rec.Schema().Equal(fw.schema) {
		return errors.New("write parquet: batch schema differs from the file's")
	}
	if len(fw.groups) >= maxRowGroups {
		return errors.New("write parquet: too many row groups in one file")
	}
	if fw.cols == nil {
		var plain map[string]bool
		if rec.NumRows() >= minSampleRows {
			plain = plainColumns(rec)
		}
		ps, err := parquetSchema(fw.schema, plain)
		if err != nil {
			return err
		}
		fw.cols = tableColumns(ps)
	}
	rg, err := fw.enc.encode(fw.cols, rec, nil)
	if err != nil {
		fw.err = fmt.Errorf("write parquet: %w", err)
		return fw.err
	}
	if _, err := fw.w.Write(rg.data); err != nil {
		fw.err = err
		return err
	}
	meta := rg.placed(fw.off, len(fw.groups))
	fw.off += int64(len(rg.data))
	fw.rows += meta.NumRows
	fw.groups = append(fw.groups, meta)
	return nil
}

// Rows returns the number of rows written.
func (fw *FileWriter) Rows() int64 { return fw.rows }

// Close writes the footer. It does not close the underlying writer.
func (fw *FileWriter) Close() error {
	if fw.err != nil {
		return fw.err
	}
	md := fw.template
	md.NumRows = fw.rows
	md.RowGroups = fw.groups
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		return fmt.Errorf("encode footer: %w", err)
	}
	footer = binary.LittleEndian.AppendUint32(footer, uint32(len(footer)))
	footer = append(footer, magic...)
	_, err = fw.w.Write(footer)
	fw.err = errors.New("write parquet: file is closed")
	return err
}
