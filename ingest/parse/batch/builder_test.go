package batch

import (
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// compile parses a YAML log schema and compiles it.
func compile(t testing.TB, yml string) *Schema {
	t.Helper()
	ls, err := logschema.Parse([]byte(yml), "test.yml")
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	s, err := Compile(ls)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

// kindsYAML has a column of every kind, indicators on a string, on a nested string and on an
// array, and an event time.
const kindsYAML = `
schema: Test.Kinds
fields:
  - name: name
    type: string
  - name: count
    type: int
  - name: small
    type: smallint
  - name: big
    type: bigint
  - name: ratio
    type: float
  - name: ok
    type: boolean
  - name: ts
    type: timestamp
    timeFormat: rfc3339
    isEventTime: true
  - name: srcIP
    type: string
    indicators: [ip]
  - name: user
    type: object
    fields:
      - name: id
        type: string
      - name: email
        type: string
        indicators: [email]
  - name: tags
    type: array
    element:
      type: string
  - name: hosts
    type: array
    element:
      type: string
    indicators: [hostname]
  - name: items
    type: array
    element:
      type: object
      fields:
        - name: k
          type: string
        - name: n
          type: bigint
  - name: extra
    type: json
`

func ptr[T any](v T) *T { return &v }

type kindsUser struct{ id, email *string }

type kindsItem struct {
	k *string
	n *int64
}

// kindsRow is a row of kindsYAML; nil is null, and a non-nil empty slice an empty array.
type kindsRow struct {
	name               *string
	count, small, big  *int64
	ratio              *float64
	ok                 *bool
	ts                 *time.Time
	srcIP              *string
	user               *kindsUser
	tags, hosts        []string
	items              []kindsItem
	extra              *string
	wantIPs, wantHosts []string // p_any_ip_addresses and p_any_domain_names
	wantEmails         []string
}

func field(t testing.TB, s *StructCol, name string) Column {
	t.Helper()
	i := s.node.FieldIndex(name)
	if i < 0 {
		t.Fatalf("no field %q", name)
	}
	return s.Fields[i]
}

func appendStr(c Column, v *string) {
	if v == nil {
		c.AppendNull()
	} else {
		c.(*StringCol).AppendString(*v)
	}
}

func appendInt(c Column, v *int64) {
	if v == nil {
		c.AppendNull()
	} else {
		c.(*IntCol).Append(*v)
	}
}

// writeKinds appends the values of r to the builder's open row, field by field, the way a
// parser does; it stops after the first stop fields (all of them when stop < 0).
func writeKinds(t testing.TB, b *Builder, r kindsRow, stop int) {
	t.Helper()
	root := b.Root
	steps := []func(){
		func() { appendStr(field(t, root, "name"), r.name) },
		func() { appendInt(field(t, root, "count"), r.count) },
		func() { appendInt(field(t, root, "small"), r.small) },
		func() { appendInt(field(t, root, "big"), r.big) },
		func() {
			c := field(t, root, "ratio").(*FloatCol)
			if r.ratio == nil {
				c.AppendNull()
			} else {
				c.Append(*r.ratio)
			}
		},
		func() {
			c := field(t, root, "ok").(*BoolCol)
			if r.ok == nil {
				c.AppendNull()
			} else {
				c.Append(*r.ok)
			}
		},
		func() {
			c := field(t, root, "ts").(*TimeCol)
			if r.ts == nil {
				c.AppendNull()
			} else {
				c.Append(*r.ts)
			}
		},
		func() { appendStr(field(t, root, "srcIP"), r.srcIP) },
		func() {
			c := field(t, root, "user").(*StructCol)
			if r.user == nil {
				c.AppendNull()
				return
			}
			c.Append()
			appendStr(field(t, c, "id"), r.user.id)
			appendStr(field(t, c, "email"), r.user.email)
		},
		func() { appendList(field(t, root, "tags").(*ListCol), r.tags) },
		func() { appendList(field(t, root, "hosts").(*ListCol), r.hosts) },
		func() {
			c := field(t, root, "items").(*ListCol)
			if r.items == nil {
				c.AppendNull()
				return
			}
			el := c.Elem.(*StructCol)
			for _, it := range r.items {
				el.Append()
				appendStr(field(t, el, "k"), it.k)
				appendInt(field(t, el, "n"), it.n)
			}
			c.Close()
		},
		func() { appendStr(field(t, root, "extra"), r.extra) },
	}
	if stop < 0 {
		stop = len(steps)
	}
	for _, f := range steps[:stop] {
		f()
	}
}

func appendList(c *ListCol, vals []string) {
	if vals == nil {
		c.AppendNull()
		return
	}
	el := c.Elem.(*StringCol)
	for _, v := range vals {
		el.AppendString(v)
	}
	c.Close()
}

var (
	parseTime = time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	ts0       = time.Date(2026, 11, 21, 8, 15, 30, 123456000, time.UTC)
	ts2       = time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC) // before the epoch
)

func kindsRows() []kindsRow {
	return []kindsRow{
		{
			name: ptr("alice"), count: ptr[int64](0), small: ptr[int64](-7), big: ptr[int64](1 << 40),
			ratio: ptr(0.5), ok: ptr(false), ts: &ts0, srcIP: ptr("10.0.0.1"),
			user: &kindsUser{id: ptr("u1"), email: ptr("a@x.io")},
			tags: []string{"a", "b"}, hosts: []string{"example.com", "10.0.0.1", "example.com"},
			items: []kindsItem{{k: ptr("x"), n: ptr[int64](0)}}, extra: ptr(`{"a":1}`),
			wantIPs: []string{"10.0.0.1"}, wantHosts: []string{"example.com"}, wantEmails: []string{"a@x.io"},
		},
		{
			// Every value null, and empty arrays.
			tags: []string{}, items: []kindsItem{},
		},
		{
			name: ptr(""), count: ptr[int64](math.MinInt32), small: ptr[int64](math.MaxInt16), big: ptr[int64](-1),
			ratio: ptr(-2.25), ok: ptr(true), ts: &ts2, srcIP: ptr("not an ip"),
			user: &kindsUser{email: ptr("B@Y.io")},
			tags: []string{"", "ünï", "日本"}, hosts: []string{"b.example.com", "a.example.com", "192.168.0.1"},
			items: []kindsItem{{}, {k: ptr("y"), n: ptr[int64](math.MaxInt64)}}, extra: ptr("[]"),
			wantIPs: []string{"192.168.0.1"}, wantHosts: []string{"a.example.com", "b.example.com"}, wantEmails: []string{"B@Y.io"},
		},
		{
			name: ptr("dave"), count: ptr[int64](math.MaxInt32), small: ptr[int64](math.MinInt16), big: ptr[int64](math.MinInt64),
			ratio: ptr(0.0), ok: ptr(false), srcIP: ptr("2001:db8::1"),
			user:  &kindsUser{id: ptr("u4")},
			hosts: []string{}, items: []kindsItem{{k: ptr("z")}}, extra: ptr(`"s"`),
			wantIPs: []string{"2001:db8::1"},
		},
	}
}

// checkArray checks the structure of an Arrow array the way a reader of it relies on: the
// offsets of strings and lists are in bounds and increasing, strings are valid UTF-8, children
// are as long as they should be, and the null count matches the validity bitmap.
func checkArray(t *testing.T, path string, a arrow.Array) {
	t.Helper()
	nulls := 0
	for i := range a.Len() {
		if a.IsNull(i) {
			nulls++
		}
	}
	if nulls != a.NullN() {
		t.Errorf("%s: NullN %d, but %d values are null", path, a.NullN(), nulls)
	}
	checkOffsets := func(offs []int32, limit int) {
		t.Helper()
		if a.Len() == 0 {
			return
		}
		if len(offs) != a.Len()+1 {
			t.Errorf("%s: %d offsets for %d values", path, len(offs), a.Len())
			return
		}
		for i := 1; i < len(offs); i++ {
			if offs[i] < offs[i-1] {
				t.Errorf("%s: offsets decrease at %d: %v", path, i, offs)
				return
			}
		}
		if offs[0] < 0 || int(offs[len(offs)-1]) > limit {
			t.Errorf("%s: offsets %d..%d out of 0..%d", path, offs[0], offs[len(offs)-1], limit)
		}
	}
	switch a := a.(type) {
	case *array.String:
		checkOffsets(a.ValueOffsets(), len(a.ValueBytes()))
		for i := range a.Len() {
			if !utf8.ValidString(a.Value(i)) {
				t.Errorf("%s[%d]: invalid UTF-8 %q", path, i, a.Value(i))
			}
		}
	case *array.List:
		checkOffsets(a.Offsets(), a.ListValues().Len())
		checkArray(t, path+"[]", a.ListValues())
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		for i := range a.NumField() {
			f := a.Field(i)
			if f.Len() != a.Len() {
				t.Errorf("%s.%s: %d values in a struct of %d", path, st.Field(i).Name, f.Len(), a.Len())
			}
			checkArray(t, path+"."+st.Field(i).Name, f)
		}
	}
}

// checkRecord checks a record's shape against the schema and every column's structure.
func checkRecord(t *testing.T, s *Schema, rec arrow.RecordBatch, rows int) {
	t.Helper()
	if !rec.Schema().Equal(s.Arrow) {
		t.Fatalf("record schema\n%v\nwant\n%v", rec.Schema(), s.Arrow)
	}
	if rec.NumRows() != int64(rows) {
		t.Fatalf("record has %d rows, want %d", rec.NumRows(), rows)
	}
	for i, c := range rec.Columns() {
		f := s.Arrow.Field(i)
		if c.Len() != rows {
			t.Errorf("column %s has %d values, want %d", f.Name, c.Len(), rows)
		}
		if !arrow.TypeEqual(c.DataType(), f.Type) {
			t.Errorf("column %s is %v, want %v", f.Name, c.DataType(), f.Type)
		}
		if !f.Nullable && c.NullN() != 0 {
			t.Errorf("column %s is not nullable but has %d nulls", f.Name, c.NullN())
		}
		checkArray(t, f.Name, c)
	}
}

func column(t *testing.T, rec arrow.RecordBatch, name string) arrow.Array {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("record has %d columns %q", len(idx), name)
	}
	return rec.Column(idx[0])
}

// strs returns the strings of a list, or nil when it is null.
func strs(l *array.List, i int) []string {
	if l.IsNull(i) {
		return nil
	}
	start, end := l.ValueOffsets(i)
	el := l.ListValues().(*array.String)
	out := []string{}
	for j := start; j < end; j++ {
		out = append(out, el.Value(int(j)))
	}
	return out
}

func strAt(a arrow.Array, i int) *string {
	if a.IsNull(i) {
		return nil
	}
	return ptr(a.(*array.String).Value(i))
}

func show[T any](p *T) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprintf("%v", *p)
}

// checkKinds checks every column of a record built from rows, log fields and standard fields.
func checkKinds(t *testing.T, s *Schema, rec arrow.RecordBatch, rows []kindsRow, src Source) {
	t.Helper()
	checkRecord(t, s, rec, len(rows))
	eqStr := func(col string, i int, got, want *string) {
		t.Helper()
		if show(got) != show(want) || (got == nil) != (want == nil) {
			t.Errorf("row %d %s = %s, want %s", i, col, show(got), show(want))
		}
	}
	eqList := func(col string, i int, got, want []string) {
		t.Helper()
		if (got == nil) != (want == nil) || !slices.Equal(got, want) {
			t.Errorf("row %d %s = %q (null %v), want %q (null %v)", i, col, got, got == nil, want, want == nil)
		}
	}
	intAt := func(a arrow.Array, i int) *int64 {
		if a.IsNull(i) {
			return nil
		}
		switch a := a.(type) {
		case *array.Int16:
			return ptr(int64(a.Value(i)))
		case *array.Int32:
			return ptr(int64(a.Value(i)))
		case *array.Int64:
			return ptr(a.Value(i))
		}
		t.Fatalf("not an integer array: %T", a)
		return nil
	}
	user := column(t, rec, "user").(*array.Struct)
	items := column(t, rec, "items").(*array.List)
	itemVals := items.ListValues().(*array.Struct)
	for i, r := range rows {
		eqStr("name", i, strAt(column(t, rec, "name"), i), r.name)
		for _, c := range []struct {
			name string
			want *int64
		}{{"count", r.count}, {"small", r.small}, {"big", r.big}} {
			if got := intAt(column(t, rec, c.name), i); show(got) != show(c.want) {
				t.Errorf("row %d %s = %s, want %s", i, c.name, show(got), show(c.want))
			}
		}
		ratio := column(t, rec, "ratio").(*array.Float64)
		if got := ratio.IsNull(i); got != (r.ratio == nil) || (!got && ratio.Value(i) != *r.ratio) {
			t.Errorf("row %d ratio = %v (null %v), want %s", i, ratio.Value(i), got, show(r.ratio))
		}
		ok := column(t, rec, "ok").(*array.Boolean)
		if got := ok.IsNull(i); got != (r.ok == nil) || (!got && ok.Value(i) != *r.ok) {
			t.Errorf("row %d ok = %v (null %v), want %s", i, ok.Value(i), got, show(r.ok))
		}
		ts := column(t, rec, "ts").(*array.Timestamp)
		if got := ts.IsNull(i); got != (r.ts == nil) || (!got && ts.Value(i) != arrow.Timestamp(r.ts.UnixMicro())) {
			t.Errorf("row %d ts = %v (null %v), want %v", i, ts.Value(i), got, r.ts)
		}
		eqStr("srcIP", i, strAt(column(t, rec, "srcIP"), i), r.srcIP)
		if user.IsNull(i) != (r.user == nil) {
			t.Errorf("row %d user null = %v, want %v", i, user.IsNull(i), r.user == nil)
		}
		var wantUser kindsUser
		if r.user != nil {
			wantUser = *r.user
		}
		eqStr("user.id", i, strAt(user.Field(0), i), wantUser.id)
		eqStr("user.email", i, strAt(user.Field(1), i), wantUser.email)
		eqList("tags", i, strs(column(t, rec, "tags").(*array.List), i), r.tags)
		eqList("hosts", i, strs(column(t, rec, "hosts").(*array.List), i), r.hosts)
		if items.IsNull(i) != (r.items == nil) {
			t.Errorf("row %d items null = %v, want %v", i, items.IsNull(i), r.items == nil)
		}
		start, end := items.ValueOffsets(i)
		if int(end-start) != len(r.items) {
			t.Errorf("row %d has %d items, want %d", i, end-start, len(r.items))
		} else {
			for j, it := range r.items {
				k := int(start) + j
				eqStr(fmt.Sprintf("items[%d].k", j), i, strAt(itemVals.Field(0), k), it.k)
				if got := intAt(itemVals.Field(1), k); show(got) != show(it.n) {
					t.Errorf("row %d items[%d].n = %s, want %s", i, j, show(got), show(it.n))
				}
			}
		}
		eqStr("extra", i, strAt(column(t, rec, "extra"), i), r.extra)

		// Standard fields.
		eqStr(FieldLogType, i, strAt(column(t, rec, FieldLogType), i), ptr(s.LogType))
		eqStr(FieldSourceID, i, strAt(column(t, rec, FieldSourceID), i), ptr(src.ID))
		eqStr(FieldSourceLabel, i, strAt(column(t, rec, FieldSourceLabel), i), ptr(src.Label))
		event := parseTime
		if r.ts != nil {
			event = *r.ts
		}
		if got := column(t, rec, FieldEventTime).(*array.Timestamp).Value(i); got != arrow.Timestamp(event.UnixMicro()) {
			t.Errorf("row %d p_event_time = %v, want %v", i, got.ToTime(arrow.Microsecond), event)
		}
		if got := column(t, rec, FieldParseTime).(*array.Timestamp).Value(i); got != arrow.Timestamp(parseTime.UnixMicro()) {
			t.Errorf("row %d p_parse_time = %v, want %v", i, got.ToTime(arrow.Microsecond), parseTime)
		}
		eqList("p_any_ip_addresses", i, strs(column(t, rec, "p_any_ip_addresses").(*array.List), i), r.wantIPs)
		eqList("p_any_domain_names", i, strs(column(t, rec, "p_any_domain_names").(*array.List), i), r.wantHosts)
		eqList("p_any_emails", i, strs(column(t, rec, "p_any_emails").(*array.List), i), r.wantEmails)
	}
	checkRowIDs(t, rec)
}

// rowIDs returns the p_row_id values of a record, copied: Value points into the record's
// buffers, which Recycle hands on.
func rowIDs(t *testing.T, rec arrow.RecordBatch) []string {
	t.Helper()
	c := column(t, rec, FieldRowID).(*array.String)
	ids := make([]string, c.Len())
	for i := range ids {
		ids[i] = strings.Clone(c.Value(i))
	}
	return ids
}

// checkRowIDs checks that the ids of a record are 32 lowercase hex digits with one prefix and
// a counter that goes up by one from row to row.
func checkRowIDs(t *testing.T, rec arrow.RecordBatch) {
	t.Helper()
	ids := rowIDs(t, rec)
	for i, id := range ids {
		if !isLowerHex(id, 32) {
			t.Fatalf("row %d: p_row_id %q is not 32 lowercase hex digits", i, id)
		}
		if i > 0 {
			if id[:16] != ids[0][:16] {
				t.Errorf("row %d: p_row_id %q has another prefix than %q", i, id, ids[0])
			}
			if counter(id) != counter(ids[i-1])+1 {
				t.Errorf("row %d: p_row_id %q does not follow %q", i, id, ids[i-1])
			}
		}
	}
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func counter(id string) uint64 {
	n, err := strconv.ParseUint(id[16:], 16, 64)
	if err != nil {
		panic(err)
	}
	return n
}

// TestBuildKinds builds rows with a column of every kind (nulls, zeros, false, empty and null
// arrays, nested objects, extremes of each integer width) and checks every value of the
// record, standard fields included.
func TestBuildKinds(t *testing.T) {
	s := compile(t, kindsYAML)
	for _, arena := range []bool{false, true} {
		t.Run(fmt.Sprintf("arena=%v", arena), func(t *testing.T) {
			b := NewBuilder(s, NewRowIDs())
			if arena {
				b.SetArena(NewArena(1 << 20))
			}
			src := Source{ID: "src-1", Label: "my label"}
			b.SetSource(src)
			b.SetParseTime(parseTime)
			rows := kindsRows()
			for _, r := range rows {
				b.Begin()
				writeKinds(t, b, r, -1)
				b.End()
			}
			if b.Rows() != len(rows) {
				t.Errorf("Rows() = %d, want %d", b.Rows(), len(rows))
			}
			rec := b.Build()
			defer rec.Release()
			checkKinds(t, s, rec, rows, src)
			if b.Rows() != 0 {
				t.Errorf("Rows() after Build = %d, want 0", b.Rows())
			}
		})
	}
}

// TestSchemaLayout checks the columns of a compiled schema: the log's fields in order, the
// standard fields (not nullable), then the p_any_* columns of the schema's indicators in
// indicator order.
func TestSchemaLayout(t *testing.T) {
	s := compile(t, kindsYAML)
	want := []struct {
		name     string
		typ      arrow.DataType
		nullable bool
	}{
		{"name", arrow.BinaryTypes.String, true},
		{"count", arrow.PrimitiveTypes.Int32, true},
		{"small", arrow.PrimitiveTypes.Int16, true},
		{"big", arrow.PrimitiveTypes.Int64, true},
		{"ratio", arrow.PrimitiveTypes.Float64, true},
		{"ok", arrow.FixedWidthTypes.Boolean, true},
		{"ts", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, true},
		{"srcIP", arrow.BinaryTypes.String, true},
		{"user", arrow.StructOf(
			arrow.Field{Name: "id", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "email", Type: arrow.BinaryTypes.String, Nullable: true}), true},
		{"tags", arrow.ListOf(arrow.BinaryTypes.String), true},
		{"hosts", arrow.ListOf(arrow.BinaryTypes.String), true},
		{"items", arrow.ListOf(arrow.StructOf(
			arrow.Field{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true})), true},
		{"extra", arrow.BinaryTypes.String, true},
		{FieldLogType, arrow.BinaryTypes.String, false},
		{FieldRowID, arrow.BinaryTypes.String, false},
		{FieldEventTime, TimestampType, false},
		{FieldParseTime, TimestampType, false},
		{FieldSourceID, arrow.BinaryTypes.String, false},
		{FieldSourceLabel, arrow.BinaryTypes.String, false},
		{FieldSourceFile, SourceFileType, true},
		{"p_any_ip_addresses", arrow.ListOf(arrow.BinaryTypes.String), true},
		{"p_any_domain_names", arrow.ListOf(arrow.BinaryTypes.String), true},
		{"p_any_emails", arrow.ListOf(arrow.BinaryTypes.String), true},
	}
	fields := s.Arrow.Fields()
	if len(fields) != len(want) {
		t.Errorf("%d columns, want %d: %v", len(fields), len(want), s.Arrow)
	}
	for i := range min(len(fields), len(want)) {
		f, w := fields[i], want[i]
		if f.Name != w.name || !arrow.TypeEqual(f.Type, w.typ) || f.Nullable != w.nullable {
			t.Errorf("column %d = %s %v nullable %v, want %s %v nullable %v", i, f.Name, f.Type, f.Nullable, w.name, w.typ, w.nullable)
		}
		if got := IsJSON(f); got != (f.Name == "extra") {
			t.Errorf("IsJSON(%s) = %v", f.Name, got)
		}
	}
	if s.LogType != "Test.Kinds" || s.Table != "test_kinds" {
		t.Errorf("LogType %q Table %q", s.LogType, s.Table)
	}
	if len(s.Fields) != 13 || s.Root.Arrow.(*arrow.StructType).NumFields() != 13 {
		t.Errorf("%d top-level fields", len(s.Fields))
	}
	for i, f := range s.Fields {
		if s.FieldIndex(f.Name) != i {
			t.Errorf("FieldIndex(%q) = %d, want %d", f.Name, s.FieldIndex(f.Name), i)
		}
	}
	if s.FieldIndex("nope") != -1 || s.FieldIndex("Name") != -1 {
		t.Errorf("FieldIndex of an unknown name is not -1")
	}
	// Indicators written on an array apply to its elements.
	hosts := s.Fields[s.FieldIndex("hosts")]
	if len(hosts.Scanners) != 0 || len(hosts.Elem.Scanners) != 1 {
		t.Errorf("hosts has %d scanners and its element %d, want 0 and 1", len(hosts.Scanners), len(hosts.Elem.Scanners))
	}
	if ts := s.Fields[s.FieldIndex("ts")]; ts.EventTime != 1 || ts.Time == nil {
		t.Errorf("ts: EventTime %d, parser %v", ts.EventTime, ts.Time)
	}
	if p := s.Fields[s.FieldIndex("user")].Fields[1].Path; p != "user.email" {
		t.Errorf("nested path %q, want user.email", p)
	}
}

// TestStringUTF8 checks that Append replaces each invalid byte by U+FFFD and leaves valid
// text alone, and that AppendUTF8 and AppendString store valid text as is.
func TestStringUTF8(t *testing.T) {
	s := compile(t, "schema: Test.Str\nfields:\n  - name: s\n    type: string\n")
	for _, tc := range []struct {
		in, want string
	}{
		{"", ""},
		{"plain", "plain"},
		{"héllo wörld ✓ 日本 🎉", "héllo wörld ✓ 日本 🎉"},
		{"\uFFFD already", "\uFFFD already"},
		{"\xff", "\uFFFD"},
		{"a\xffb\xfec", "a\uFFFDb\uFFFDc"},
		{"\xff\xfe", "\uFFFD\uFFFD"},
		{"cut \xc3", "cut \uFFFD"},             // a truncated 2-byte sequence
		{"\xe2\x82", "\uFFFD\uFFFD"},           // a truncated 3-byte sequence
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // a surrogate half
		{"\xc0\xaf", "\uFFFD\uFFFD"},           // an overlong encoding
		{"x\x00y", "x\x00y"},                   // NUL is valid UTF-8
	} {
		for _, how := range []string{"Append", "AppendUTF8", "AppendString"} {
			if how == "AppendUTF8" && !utf8.ValidString(tc.in) {
				continue // AppendUTF8 is for values known to be valid
			}
			b := NewBuilder(s, NewRowIDs())
			c := b.Root.Fields[0].(*StringCol)
			b.Begin()
			switch how {
			case "Append":
				c.Append([]byte(tc.in))
			case "AppendUTF8":
				c.AppendUTF8([]byte(tc.in))
			case "AppendString":
				c.AppendString(tc.in)
			}
			b.End()
			rec := b.Build()
			if got := rec.Column(0).(*array.String).Value(0); got != tc.want {
				t.Errorf("%s(%q) stored %q, want %q", how, tc.in, got, tc.want)
			}
			rec.Release()
		}
	}
}

// TestSourceAndLogType checks p_log_type, p_source_id and p_source_label on every row,
// with invalid UTF-8 in the source's names replaced.
func TestSourceAndLogType(t *testing.T) {
	s := compile(t, "schema: Test.Src\nfields:\n  - name: s\n    type: string\n")
	for _, tc := range []struct {
		src       Source
		wantID    string
		wantLabel string
	}{
		{Source{}, "", ""},
		{Source{ID: "id-1", Label: "Label ✓"}, "id-1", "Label ✓"},
		{Source{ID: "bad\xff", Label: "lab\xfe\xffel"}, "bad\uFFFD", "lab\uFFFDel"},
	} {
		b := NewBuilder(s, NewRowIDs())
		b.SetSource(tc.src)
		for range 3 {
			b.Begin()
			b.Root.Fields[0].AppendNull()
			b.End()
		}
		rec := b.Build()
		for i := range 3 {
			for _, c := range []struct{ col, want string }{
				{FieldLogType, "Test.Src"}, {FieldSourceID, tc.wantID}, {FieldSourceLabel, tc.wantLabel},
			} {
				if got := column(t, rec, c.col).(*array.String).Value(i); got != c.want {
					t.Errorf("source %q: row %d %s = %q, want %q", tc.src, i, c.col, got, c.want)
				}
			}
		}
		checkRecord(t, s, rec, 3)
		rec.Release()
	}
}

// TestConstantColumns checks p_log_type, p_source_id and p_source_label of records that are
// all held while builders of several log types and sources, with and without a shared arena,
// build batches of growing and shrinking sizes and change their source between batches.
func TestConstantColumns(t *testing.T) {
	sa := compile(t, "schema: Test.A\nfields:\n  - name: s\n    type: string\n")
	sb := compile(t, "schema: Test.Bee\nfields:\n  - name: s\n    type: string\n")
	arena := NewArena(64 << 20)
	ids := NewRowIDs()
	type builder struct {
		b       *Builder
		sources []Source // one per batch
	}
	builders := []builder{
		{NewBuilder(sa, ids), []Source{{"a1", "A one"}, {"a1", "A one"}, {"a2", "A two"}, {"", ""}, {"a1", "A one"}}},
		{NewBuilder(sb, ids), []Source{{"b", "B"}, {"b", "B"}, {"b", "B"}, {"b", "B"}, {"b2", "B2"}}},
		{NewBuilder(sa, ids), []Source{{"a1", "A one"}, {"c", "C"}, {"a1", "A one"}, {"a1", "A one"}, {"a1", "A one"}}},
		{NewBuilder(sb, ids), []Source{{"b", "B"}, {"x", ""}, {"", "y"}, {"b", "B"}, {"b", "B"}}}, // no arena
	}
	for _, bl := range builders[:3] {
		bl.b.SetArena(arena)
	}
	type held struct {
		rec     arrow.RecordBatch
		s       *Schema
		logType string
		src     Source
	}
	var recs []held
	for batch, n := range []int{3, 1500, 2, 5000, 1} {
		for _, bl := range builders {
			src := bl.sources[batch]
			bl.b.SetSource(src)
			for range n {
				bl.b.Begin()
				bl.b.Root.Fields[0].(*StringCol).AppendString("v")
				bl.b.End()
			}
			recs = append(recs, held{bl.b.Build(), bl.b.Schema(), bl.b.Schema().LogType, src})
		}
	}
	for i, h := range recs {
		checkRecord(t, h.s, h.rec, int(h.rec.NumRows()))
		for _, c := range []struct{ col, want string }{
			{FieldLogType, h.logType}, {FieldSourceID, h.src.ID}, {FieldSourceLabel, h.src.Label},
		} {
			a := column(t, h.rec, c.col).(*array.String)
			for j := range a.Len() {
				if a.Value(j) != c.want {
					t.Errorf("record %d row %d: %s = %q, want %q", i, j, c.col, a.Value(j), c.want)
					break
				}
			}
		}
		h.rec.Release()
	}
}

// TestRollback checks that Rollback discards a row however far it got (including values
// already in nested objects and arrays, and the indicators they found) and that the rows
// around it are intact, with consecutive row ids.
func TestRollback(t *testing.T) {
	s := compile(t, kindsYAML)
	rows := kindsRows()
	junk := kindsRow{
		name: ptr("JUNK"), count: ptr[int64](99), small: ptr[int64](99), big: ptr[int64](99), ratio: ptr(9.9),
		ok: ptr(true), ts: ptr(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)), srcIP: ptr("9.9.9.9"),
		user: &kindsUser{id: ptr("JUNK"), email: ptr("junk@junk.io")}, tags: []string{"JUNK", "JUNK"},
		hosts: []string{"junk.example", "8.8.8.8"}, items: []kindsItem{{k: ptr("JUNK"), n: ptr[int64](9)}}, extra: ptr("{}"),
	}
	for stop := 0; stop <= 13; stop++ {
		for _, arena := range []bool{false, true} {
			t.Run(fmt.Sprintf("after %d fields, arena=%v", stop, arena), func(t *testing.T) {
				b := NewBuilder(s, NewRowIDs())
				if arena {
					b.SetArena(NewArena(1 << 20))
				}
				b.SetParseTime(parseTime)
				for i, r := range rows {
					// A rolled-back row before every row, and one after the last.
					b.Begin()
					writeKinds(t, b, junk, stop)
					if stop > 6 && b.EventTime() != *junk.ts {
						t.Errorf("EventTime in the junk row = %v, want %v", b.EventTime(), *junk.ts)
					}
					b.Rollback()
					if b.Rows() != i {
						t.Errorf("Rows() after Rollback = %d, want %d", b.Rows(), i)
					}
					b.Begin()
					writeKinds(t, b, r, -1)
					b.End()
				}
				b.Begin()
				writeKinds(t, b, junk, stop)
				b.Rollback()
				// The rolled-back rows' event time (2099) is not in the range.
				if lo, hi, ok := b.EventRange(); !ok || !lo.Equal(ts2) || !hi.Equal(parseTime) {
					t.Errorf("EventRange = %v, %v, %v; want %v, %v", lo, hi, ok, ts2, parseTime)
				}
				rec := b.Build()
				defer rec.Release()
				checkKinds(t, s, rec, rows, Source{})
			})
		}
	}
}

// TestRollbackOnly checks that a builder whose every row was rolled back builds an empty
// record, and that an empty builder does too.
func TestRollbackOnly(t *testing.T) {
	s := compile(t, kindsYAML)
	b := NewBuilder(s, NewRowIDs())
	rec := b.Build()
	checkRecord(t, s, rec, 0)
	rec.Release()
	b.Begin()
	writeKinds(t, b, kindsRows()[0], -1)
	b.Rollback()
	rec = b.Build()
	checkRecord(t, s, rec, 0)
	rec.Release()
	if _, _, ok := b.EventRange(); ok {
		t.Errorf("EventRange reports rows after rollbacks only")
	}
}

// TestIncHex checks the in-place increment of a lowercase hex number.
func TestIncHex(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"00", "01"},
		{"01", "02"},
		{"08", "09"},
		{"09", "0a"},
		{"0a", "0b"},
		{"0e", "0f"},
		{"0f", "10"},
		{"19", "1a"},
		{"9f", "a0"},
		{"99", "9a"},
		{"af", "b0"},
		{"fe", "ff"},
		{"ff", "00"}, // wraps around
		{"0", "1"},
		{"f", "0"},
		{"0fff", "1000"},
		{"00ff", "0100"},
		{"09ff", "0a00"},
		{"0000000000000fff", "0000000000001000"},
		{"0fffffffffffffff", "1000000000000000"},
		{"ffffffffffffffff", "0000000000000000"},
	} {
		h := []byte(tc.in)
		incHex(h)
		if string(h) != tc.want {
			t.Errorf("incHex(%q) = %q, want %q", tc.in, h, tc.want)
		}
	}
	// Every 3-digit number goes to the next one.
	h := []byte("000")
	for i := 1; i <= 0xfff; i++ {
		incHex(h)
		if want := fmt.Sprintf("%03x", i); string(h) != want {
			t.Fatalf("after %d increments: %q, want %q", i, h, want)
		}
	}
}

// buildIDs builds n rows of a one-column schema and returns their row ids.
func buildIDs(t *testing.T, b *Builder, n int) []string {
	t.Helper()
	for range n {
		b.Begin()
		b.Root.Fields[0].(*StringCol).AppendString("v")
		b.End()
	}
	rec := b.Build()
	defer rec.Release()
	return rowIDs(t, rec)
}

// TestRowIDs checks p_row_id over several 4096-id blocks and batches: 32 lowercase hex digits,
// the RowIDs's prefix, then a counter that starts at 0 and goes up by one with every row,
// across carries (0f->10, ff->100, fff->1000) and block ends.
func TestRowIDs(t *testing.T) {
	s := compile(t, "schema: Test.IDs\nfields:\n  - name: s\n    type: string\n")
	ids := NewRowIDs()
	prefix := hex.EncodeToString(ids.prefix[:])
	b := NewBuilder(s, ids)
	var all []string
	for _, n := range []int{1, 300, 4000, 4096, 10} { // batches that end inside and across blocks
		all = append(all, buildIDs(t, b, n)...)
	}
	seen := map[string]bool{}
	for i, id := range all {
		want := prefix + fmt.Sprintf("%016x", i)
		if id != want {
			t.Fatalf("row %d: p_row_id %q, want %q", i, id, want)
		}
		if seen[id] {
			t.Fatalf("row %d: p_row_id %q repeats", i, id)
		}
		seen[id] = true
	}
	// The exact comparison above covers the carries ...0f -> ...10, ...ff -> ...100 and
	// ...fff -> ...1000, and the block ends at 0x1000 and 0x2000.
	if len(all) <= 0x2000 {
		t.Fatalf("only %d ids: the test should cross two block ends", len(all))
	}
}

// TestRowIDsNotRolledBack checks that Rollback does not use up an id.
func TestRowIDsNotRolledBack(t *testing.T) {
	s := compile(t, "schema: Test.IDs\nfields:\n  - name: s\n    type: string\n")
	b := NewBuilder(s, NewRowIDs())
	for i := range 10 {
		b.Begin()
		b.Root.Fields[0].(*StringCol).AppendString("v")
		if i%2 == 0 {
			b.Rollback()
		} else {
			b.End()
		}
	}
	rec := b.Build()
	defer rec.Release()
	got := rowIDs(t, rec)
	if len(got) != 5 || counter(got[0]) != 0 || counter(got[4]) != 4 {
		t.Errorf("ids after rollbacks: %q, want counters 0..4", got)
	}
	checkRowIDs(t, rec)
}

// TestRowIDsShared checks builders sharing a RowIDs: each takes blocks of 4096 ids, so ids
// never repeat, and each builder's ids follow each other within a block.
func TestRowIDsShared(t *testing.T) {
	s := compile(t, "schema: Test.IDs\nfields:\n  - name: s\n    type: string\n")
	ids := NewRowIDs()
	a, b := NewBuilder(s, ids), NewBuilder(s, ids)
	var fromA, fromB []string
	for range 3 {
		fromA = append(fromA, buildIDs(t, a, 2000)...)
		fromB = append(fromB, buildIDs(t, b, 3000)...)
	}
	seen := map[string]bool{}
	for _, id := range append(slices.Clone(fromA), fromB...) {
		if seen[id] {
			t.Fatalf("p_row_id %q repeats", id)
		}
		seen[id] = true
	}
	// a takes block 0, b block 1, b block 2 (after its first 4096), a block 3, b block 4.
	check := func(name string, got []string, blocks []uint64) {
		t.Helper()
		var want []uint64
		for _, bl := range blocks {
			for i := range uint64(idBlockSize) {
				want = append(want, bl*idBlockSize+i)
			}
		}
		for i, id := range got {
			if counter(id) != want[i] {
				t.Fatalf("%s row %d: counter %#x, want %#x", name, i, counter(id), want[i])
			}
		}
	}
	check("a", fromA, []uint64{0, 3})
	check("b", fromB, []uint64{1, 2, 4})
	// Two fresh RowIDs have different prefixes (64 random bits).
	if other := NewRowIDs(); other.prefix == ids.prefix {
		t.Errorf("two RowIDs share the prefix %x", ids.prefix)
	}
}

// TestRowIDsLongCarry checks a counter that crosses a carry through many hex digits inside a
// block: from ...0fffffffffffffff to ...1000000000000000.
func TestRowIDsLongCarry(t *testing.T) {
	s := compile(t, "schema: Test.IDs\nfields:\n  - name: s\n    type: string\n")
	ids := NewRowIDs()
	start := uint64(0x0fffffffffffff00)
	ids.next.Store(start)
	got := buildIDs(t, NewBuilder(s, ids), 600)
	for i, id := range got {
		if want := hex.EncodeToString(ids.prefix[:]) + fmt.Sprintf("%016x", start+uint64(i)); id != want {
			t.Fatalf("row %d: %q, want %q", i, id, want)
		}
	}
}

// TestIndicators checks p_any_* values: found in strings, nested objects, array elements and
// keys of json fields (Indicate), deduplicated and sorted per row, null for a row without any,
// and not leaking from one row to the next.
func TestIndicators(t *testing.T) {
	s := compile(t, `
schema: Test.Ind
fields:
  - name: a
    type: string
    indicators: [ip]
  - name: b
    type: string
    indicators: [hostname, email]
  - name: list
    type: array
    element:
      type: string
    indicators: [ip]
  - name: obj
    type: object
    fields:
      - name: md5
        type: string
        indicators: [md5]
  - name: doc
    type: json
    fields:
      - name: who
        type: string
        indicators: [username]
`)
	wantKinds := []string{"p_any_ip_addresses", "p_any_domain_names", "p_any_emails", "p_any_usernames", "p_any_md5_hashes"}
	var kinds []string
	for _, k := range s.Kinds {
		kinds = append(kinds, k.Column())
	}
	if !slices.Equal(kinds, wantKinds) {
		t.Fatalf("indicator columns %q, want %q", kinds, wantKinds)
	}
	doc := s.Fields[s.FieldIndex("doc")]
	type row struct {
		a, b  string
		list  []string
		md5   string
		who   []string // values found under doc's "who" key
		wants map[string][]string
	}
	rows := []row{
		{
			a: "10.0.0.2", b: "10.0.0.1", list: []string{"10.0.0.3", "10.0.0.1", "10.0.0.2", "bogus"},
			md5: "D41D8CD98F00B204E9800998ECF8427E", who: []string{"zed", "amy", "zed"},
			wants: map[string][]string{
				"p_any_ip_addresses": {"10.0.0.1", "10.0.0.2", "10.0.0.3"},
				"p_any_emails":       {"10.0.0.1"}, // b's email scanner takes any value
				"p_any_md5_hashes":   {"d41d8cd98f00b204e9800998ecf8427e"},
				"p_any_usernames":    {"amy", "zed"},
			},
		},
		{a: "nope", b: "", list: []string{}, wants: map[string][]string{}},
		{
			a: " 1.2.3.4 ", b: "Host.Example.com", list: nil,
			wants: map[string][]string{
				"p_any_ip_addresses": {"1.2.3.4"},
				"p_any_domain_names": {"Host.Example.com"},
				"p_any_emails":       {"Host.Example.com"},
			},
		},
	}
	b := NewBuilder(s, NewRowIDs())
	for _, r := range rows {
		b.Begin()
		b.Root.Fields[0].(*StringCol).AppendString(r.a)
		b.Root.Fields[1].(*StringCol).AppendString(r.b)
		appendList(b.Root.Fields[2].(*ListCol), r.list)
		obj := b.Root.Fields[3].(*StructCol)
		obj.Append()
		obj.Fields[0].(*StringCol).AppendString(r.md5)
		for _, w := range r.who {
			b.Indicate(doc.Fields[0], []byte(w))
		}
		b.Root.Fields[4].(*StringCol).AppendString(`{"who":"..."}`)
		b.End()
	}
	rec := b.Build()
	defer rec.Release()
	checkRecord(t, s, rec, len(rows))
	for i, r := range rows {
		for _, k := range wantKinds {
			got := strs(column(t, rec, k).(*array.List), i)
			if !slices.Equal(got, r.wants[k]) || (got == nil) != (r.wants[k] == nil) {
				t.Errorf("row %d %s = %q, want %q", i, k, got, r.wants[k])
			}
		}
	}
}

// TestIndicatorsAcrossGrowth checks indicator values found early in a row while the column
// they point into grows to new buffers later in the same row (long array elements), with and
// without an arena that hands the old buffers on.
func TestIndicatorsAcrossGrowth(t *testing.T) {
	s := compile(t, `
schema: Test.Grow
fields:
  - name: emails
    type: array
    element:
      type: string
    indicators: [email]
  - name: other
    type: string
`)
	for _, arena := range []bool{false, true} {
		b := NewBuilder(s, NewRowIDs())
		if arena {
			b.SetArena(NewArena(64 << 20))
		}
		var want [][]string
		for row := range 6 {
			b.Begin()
			var emails []string
			l := b.Root.Fields[0].(*ListCol)
			for j := range 40 {
				// Long values make the element column grow several times in the row.
				e := fmt.Sprintf("%s%03d-%d@example.com", strings.Repeat(string(rune('a'+j%26)), 500+row), j, row)
				emails = append(emails, e)
				l.Elem.(*StringCol).AppendString(e)
				if j%7 == 0 {
					l.Elem.(*StringCol).AppendString(e) // a duplicate
				}
			}
			l.Close()
			b.Root.Fields[1].(*StringCol).AppendString(strings.Repeat("o", 9000))
			b.End()
			slices.Sort(emails)
			want = append(want, emails)
		}
		rec := b.Build()
		checkRecord(t, s, rec, len(want))
		for i, w := range want {
			if got := strs(column(t, rec, "p_any_emails").(*array.List), i); !slices.Equal(got, w) {
				t.Errorf("arena=%v row %d: %d emails, want %d; first %.30q", arena, i, len(got), len(w), got)
			}
		}
		rec.Release()
	}
}

// TestEventTime checks EventTime, EventHour and EventRange: the first event-time field in
// schema order that has a value wins, whatever order the values come in; without one the parse
// time stands; hours before 1970 round down.
func TestEventTime(t *testing.T) {
	s := compile(t, `
schema: Test.Time
fields:
  - name: first
    type: timestamp
    timeFormat: rfc3339
    isEventTime: true
  - name: plain
    type: timestamp
    timeFormat: rfc3339
  - name: second
    type: timestamp
    timeFormat: rfc3339
    isEventTime: true
`)
	pt := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	t1 := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	t2 := time.Date(2027, 1, 2, 3, 0, 0, 0, time.UTC)
	t3 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 5*3600))
	for _, tc := range []struct {
		name                 string
		first, plain, second *time.Time
		reverse              bool // append second before first
		want                 time.Time
	}{
		{"none", nil, nil, nil, false, pt},
		{"not an event time", nil, &t3, nil, false, pt},
		{"first", &t1, nil, nil, false, t1},
		{"second only", nil, &t3, &t2, false, t2},
		{"both", &t1, nil, &t2, false, t1},
		{"both, second appended first", &t1, nil, &t2, true, t1},
		{"zone", &t3, nil, nil, false, t3.UTC()},
		{"epoch", ptr(time.Unix(0, 0)), nil, nil, false, time.Unix(0, 0).UTC()},
		{"just before the epoch", ptr(time.UnixMicro(-1)), nil, nil, false, time.UnixMicro(-1).UTC()},
		{"an hour before the epoch", ptr(time.Unix(-3600, 0)), nil, nil, false, time.Unix(-3600, 0).UTC()},
		{"just over an hour before", ptr(time.Unix(-3601, 0)), nil, nil, false, time.Unix(-3601, 0).UTC()},
		{"1900", ptr(time.Date(1900, 1, 1, 0, 30, 0, 0, time.UTC)), nil, nil, false, time.Date(1900, 1, 1, 0, 30, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder(s, NewRowIDs())
			b.SetParseTime(pt)
			add := func(i int, v *time.Time) {
				c := b.Root.Fields[i].(*TimeCol)
				if v == nil {
					c.AppendNull()
				} else {
					c.Append(*v)
				}
			}
			b.Begin()
			if tc.reverse {
				// Columns are independent: a parser may fill them in any order.
				add(2, tc.second)
				add(1, tc.plain)
				add(0, tc.first)
			} else {
				add(0, tc.first)
				add(1, tc.plain)
				add(2, tc.second)
			}
			if got := b.EventTime(); !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Errorf("EventTime = %v, want %v in UTC", got, tc.want)
			}
			if got := b.EventMicros(); got != tc.want.UnixMicro() {
				t.Errorf("EventMicros = %d, want %d", got, tc.want.UnixMicro())
			}
			b.End()
			lo, hi, ok := b.EventRange()
			if !ok || !lo.Equal(tc.want) || !hi.Equal(tc.want) {
				t.Errorf("EventRange = %v, %v, %v; want %v twice", lo, hi, ok, tc.want)
			}
			rec := b.Build()
			defer rec.Release()
			if got := column(t, rec, FieldEventTime).(*array.Timestamp).Value(0); got != arrow.Timestamp(tc.want.UnixMicro()) {
				t.Errorf("p_event_time = %d, want %d", got, tc.want.UnixMicro())
			}
			if got := column(t, rec, FieldParseTime).(*array.Timestamp).Value(0); got != arrow.Timestamp(pt.UnixMicro()) {
				t.Errorf("p_parse_time = %d, want %d", got, pt.UnixMicro())
			}
		})
	}

	// A new row starts without the previous row's event time.
	b := NewBuilder(s, NewRowIDs())
	b.SetParseTime(pt)
	b.Begin()
	b.Root.Fields[0].(*TimeCol).Append(t1)
	b.Root.Fields[1].AppendNull()
	b.Root.Fields[2].AppendNull()
	b.End()
	b.Begin()
	if got := b.EventTime(); !got.Equal(pt) {
		t.Errorf("EventTime of a new row = %v, want the parse time %v", got, pt)
	}
	b.Rollback()

	// EventRange spans the rows' event times, parse-time fallbacks included, and starts over
	// after Build.
	b.Begin()
	for i := range 3 {
		b.Root.Fields[i].AppendNull()
	}
	b.End()
	lo, hi, ok := b.EventRange()
	if !ok || !lo.Equal(t1) || !hi.Equal(pt) {
		t.Errorf("EventRange = %v, %v, %v; want %v, %v", lo, hi, ok, t1, pt)
	}
	b.Build().Release()
	if _, _, ok := b.EventRange(); ok {
		t.Errorf("EventRange after Build reports rows")
	}
	b.Begin()
	b.Root.Fields[0].(*TimeCol).Append(t2)
	b.Root.Fields[1].AppendNull()
	b.Root.Fields[2].AppendNull()
	b.End()
	if lo, hi, ok := b.EventRange(); !ok || !lo.Equal(t2) || !hi.Equal(t2) {
		t.Errorf("EventRange of the second batch = %v, %v, %v; want %v twice", lo, hi, ok, t2)
	}
}

// TestSetParseTime checks that a new parse time applies to the rows that follow only.
func TestSetParseTime(t *testing.T) {
	s := compile(t, "schema: Test.PT\nfields:\n  - name: s\n    type: string\n")
	b := NewBuilder(s, NewRowIDs())
	p1, p2 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	for _, p := range []time.Time{p1, p2} {
		b.SetParseTime(p)
		b.Begin()
		b.Root.Fields[0].AppendNull()
		b.End()
	}
	rec := b.Build()
	defer rec.Release()
	for i, p := range []time.Time{p1, p2} {
		for _, col := range []string{FieldParseTime, FieldEventTime} {
			if got := column(t, rec, col).(*array.Timestamp).Value(i); got != arrow.Timestamp(p.UnixMicro()) {
				t.Errorf("row %d %s = %d, want %d", i, col, got, p.UnixMicro())
			}
		}
	}
}

// TestBuilderMisuse checks the panics that catch parser bugs: Begin inside a row, Build inside
// a row, and a row in which a column got no value (caught by End or at the latest by Build,
// rather than shifting the column's later values).
func TestBuilderMisuse(t *testing.T) {
	s := compile(t, "schema: Test.Misuse\nfields:\n  - name: a\n    type: string\n  - name: b\n    type: bigint\n")
	panics := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	b := NewBuilder(s, NewRowIDs())
	b.Begin()
	panics("Begin inside a row", b.Begin)
	panics("Build inside a row", func() { b.Build() })

	b = NewBuilder(s, NewRowIDs())
	b.Begin()
	b.Root.Fields[0].(*StringCol).AppendString("x") // no value for b
	panics("End or Build of a row missing a value", func() {
		b.End()
		b.Build().Release()
	})
}

// TestSize checks that Size grows with the data and drops to nothing after Build.
func TestSize(t *testing.T) {
	s := compile(t, kindsYAML)
	b := NewBuilder(s, NewRowIDs())
	if b.Size() != 0 {
		t.Errorf("Size of an empty builder = %d", b.Size())
	}
	prev := 0
	for i, r := range kindsRows() {
		b.Begin()
		writeKinds(t, b, r, -1)
		b.End()
		if b.Size() <= prev {
			t.Errorf("Size after row %d = %d, not more than %d", i, b.Size(), prev)
		}
		prev = b.Size()
	}
	b.Build().Release()
	if b.Size() != 0 {
		t.Errorf("Size after Build = %d, want 0", b.Size())
	}
	if b.Schema() != s {
		t.Errorf("Schema() is not the builder's schema")
	}
}

// recycleYAML has a column of each storage kind; recycleRows fills them with values that
// depend on the batch, strings long enough to go through the arena.
const recycleYAML = `
schema: Test.Recycle
fields:
  - name: ip
    type: string
    indicators: [ip]
  - name: s
    type: string
  - name: n
    type: bigint
  - name: i
    type: int
  - name: ok
    type: boolean
  - name: ts
    type: timestamp
    timeFormat: rfc3339
    isEventTime: true
  - name: list
    type: array
    element:
      type: string
`

type recycleRow struct {
	ip, s string
	n     int64
	ok    bool
	ts    time.Time
	list  []string // nil is a null array
}

// recycleRows makes n rows whose values all depend on the batch number.
func recycleRows(batch, n int) []recycleRow {
	rows := make([]recycleRow, n)
	for i := range rows {
		r := recycleRow{
			ip: fmt.Sprintf("10.%d.%d.%d", batch, i/256, i%256),
			s:  fmt.Sprintf("b%d r%d %s", batch, i, strings.Repeat(string(rune('A'+batch)), 50+i%100)),
			n:  int64(batch*1_000_000 + i), ok: (i+batch)%3 == 0,
			ts:   time.Date(2026, 1, 1+batch, 0, 0, i, 0, time.UTC),
			list: []string{},
		}
		for j := range i % 4 {
			r.list = append(r.list, fmt.Sprintf("b%d-r%d-e%d", batch, i, j))
		}
		if i%5 == 0 {
			r.list = nil
		}
		rows[i] = r
	}
	return rows
}

// appendRecycle appends rows to the builder, without building.
func appendRecycle(b *Builder, rows []recycleRow) {
	for _, r := range rows {
		b.Begin()
		f := b.Root.Fields
		f[0].(*StringCol).AppendString(r.ip)
		f[1].(*StringCol).AppendString(r.s)
		f[2].(*IntCol).Append(r.n)
		f[3].(*IntCol).Append(r.n % 1000)
		f[4].(*BoolCol).Append(r.ok)
		f[5].(*TimeCol).Append(r.ts)
		appendList(f[6].(*ListCol), r.list)
		b.End()
	}
}

func buildRecycle(b *Builder, rows []recycleRow) arrow.RecordBatch {
	appendRecycle(b, rows)
	return b.Build()
}

// checkRecycle checks every value of a record made from rows.
func checkRecycle(t *testing.T, what string, s *Schema, rec arrow.RecordBatch, rows []recycleRow) {
	t.Helper()
	checkRecord(t, s, rec, len(rows))
	ip := rec.Column(0).(*array.String)
	str := rec.Column(1).(*array.String)
	n := rec.Column(2).(*array.Int64)
	i32 := rec.Column(3).(*array.Int32)
	ok := rec.Column(4).(*array.Boolean)
	ts := rec.Column(5).(*array.Timestamp)
	list := rec.Column(6).(*array.List)
	ips := column(t, rec, "p_any_ip_addresses").(*array.List)
	events := column(t, rec, FieldEventTime).(*array.Timestamp)
	bad := 0
	for i, r := range rows {
		gotList := strs(list, i)
		if ip.Value(i) != r.ip || str.Value(i) != r.s || n.Value(i) != r.n || i32.Value(i) != int32(r.n%1000) ||
			ok.Value(i) != r.ok || ts.Value(i) != arrow.Timestamp(r.ts.UnixMicro()) || events.Value(i) != ts.Value(i) ||
			!slices.Equal(gotList, r.list) || (gotList == nil) != (r.list == nil) || !slices.Equal(strs(ips, i), []string{r.ip}) {
			if bad++; bad <= 3 {
				t.Errorf("%s: row %d = %q %.20q %d %d %v %v %q %q; want %q %.20q %d %d %v %v %q %q", what, i,
					ip.Value(i), str.Value(i), n.Value(i), i32.Value(i), ok.Value(i), ts.Value(i).ToTime(arrow.Microsecond), gotList, strs(ips, i),
					r.ip, r.s, r.n, r.n%1000, r.ok, r.ts, r.list, r.ip)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d rows wrong", what, bad, len(rows))
	}
	checkRowIDs(t, rec)
}

// dataAddr returns the address of the values buffer of a fixed-width or string array.
func dataAddr(a arrow.Array) uintptr {
	bufs := a.Data().Buffers()
	buf := bufs[len(bufs)-1]
	if buf == nil || buf.Len() == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&buf.Bytes()[0]))
}

// TestRecycle checks building batch after batch: a record that is held (not recycled) keeps
// its values while the builder builds more, a batch built after Recycle is right, and Recycle
// does reuse the last batch's memory. It runs with and without an arena.
func TestRecycle(t *testing.T) {
	s := compile(t, recycleYAML)
	for _, tc := range []struct {
		name  string
		arena bool
	}{{"no arena", false}, {"arena", true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder(s, NewRowIDs())
			if tc.arena {
				b.SetArena(NewArena(64 << 20))
			}
			rows1 := recycleRows(1, 700)
			rec1 := buildRecycle(b, rows1)
			checkRecycle(t, "batch 1", s, rec1, rows1)

			// No Recycle: rec1 is held and must not change while batch 2 is built.
			rows2 := recycleRows(2, 900)
			rec2 := buildRecycle(b, rows2)
			checkRecycle(t, "batch 1 while batch 2 was built", s, rec1, rows1)
			checkRecycle(t, "batch 2", s, rec2, rows2)

			// rec2 is done with: Recycle lends its memory to batch 3; rec1 is still held.
			addr2 := dataAddr(rec2.Column(2))
			rec2.Release()
			b.Recycle()
			rows3 := recycleRows(3, 800)
			rec3 := buildRecycle(b, rows3)
			checkRecycle(t, "batch 3 after Recycle", s, rec3, rows3)
			checkRecycle(t, "batch 1 after batch 3", s, rec1, rows1)
			// Without an arena the builder reuses its own buffers (with one, they go through
			// the arena and may come back in another column).
			if got := dataAddr(rec3.Column(2)); !tc.arena && got != addr2 {
				t.Errorf("batch 3 does not reuse batch 2's bigint buffer: Recycle did nothing")
			}
			ids := append(rowIDs(t, rec1), rowIDs(t, rec3)...)
			rec1.Release()
			rec3.Release()

			// More rounds of recycle, build, check and release, with batches larger and
			// smaller than the last, and an empty one.
			for round, n := range []int{2000, 10, 0, 1500, 1} {
				b.Recycle()
				rows := recycleRows(4+round, n)
				rec := buildRecycle(b, rows)
				checkRecycle(t, fmt.Sprintf("round %d", round), s, rec, rows)
				ids = append(ids, rowIDs(t, rec)...)
				rec.Release()
			}
			seen := map[string]bool{}
			for _, id := range ids {
				if seen[id] {
					t.Fatalf("p_row_id %q repeats across batches", id)
				}
				seen[id] = true
			}
		})
	}
}

// TestRecycleSharedArena checks two builders sharing an arena: the buffers one recycles serve
// the other, and neither's records are disturbed by the other's building.
func TestRecycleSharedArena(t *testing.T) {
	s := compile(t, recycleYAML)
	arena := NewArena(64 << 20)
	ids := NewRowIDs()
	a, b := NewBuilder(s, ids), NewBuilder(s, ids)
	a.SetArena(arena)
	b.SetArena(arena)
	recA := buildRecycle(a, recycleRows(1, 1000))
	recA.Release()
	a.Recycle() // a's string buffers go to the arena, for b
	if arena.held == 0 {
		t.Errorf("the arena holds nothing after Recycle")
	}
	rowsB := recycleRows(2, 1200)
	recB := buildRecycle(b, rowsB)
	// a builds again, from the arena, while recB is held.
	rowsA2 := recycleRows(3, 1100)
	recA2 := buildRecycle(a, rowsA2)
	checkRecycle(t, "b", s, recB, rowsB)
	checkRecycle(t, "a again", s, recA2, rowsA2)
	recB.Release()
	b.Recycle()
	recA2.Release()
	a.Recycle()
	rowsA3, rowsB2 := recycleRows(4, 900), recycleRows(5, 1300)
	recA3 := buildRecycle(a, rowsA3)
	recB2 := buildRecycle(b, rowsB2)
	checkRecycle(t, "a third", s, recA3, rowsA3)
	checkRecycle(t, "b second", s, recB2, rowsB2)
	recA3.Release()
	recB2.Release()
}

// TestRecyclePending checks that Recycle does nothing while a row is open or rows are pending:
// the rows are kept, and the record still held is untouched.
func TestRecyclePending(t *testing.T) {
	s := compile(t, recycleYAML)
	for _, arena := range []bool{false, true} {
		b := NewBuilder(s, NewRowIDs())
		if arena {
			b.SetArena(NewArena(64 << 20))
		}
		rows1 := recycleRows(1, 100)
		rec1 := buildRecycle(b, rows1)
		rows := recycleRows(2, 50)
		// A row is open (though no value is in yet, and no row is pending): rec1's memory is
		// not to be reused.
		b.Begin()
		b.Recycle()
		b.Rollback()
		appendRecycle(b, rows[:25])
		b.Recycle() // rows pending
		rec2 := buildRecycle(b, rows[25:])
		checkRecycle(t, fmt.Sprintf("arena=%v: pending rows", arena), s, rec2, rows)
		checkRecycle(t, fmt.Sprintf("arena=%v: held record", arena), s, rec1, rows1)
		rec2.Release()
		rec1.Release()
	}
}

// TestSourceFile checks p_source_file: null for rows without a file, the bucket and key of the
// file set when each row was written otherwise, across files changing mid-batch, rows rolled
// back, batches built in a row (the file carries over) and builders with and without an arena
// (whose all-null column is shared and sliced).
func TestSourceFile(t *testing.T) {
	s := compile(t, "schema: Test.File\nfields:\n  - name: s\n    type: string\n")
	f1 := SourceFile{Bucket: "logs", Key: "AWSLogs/1.json.gz"}
	f2 := SourceFile{Bucket: "logs", Key: "a key with spaces/2.json"}
	for _, arena := range []*Arena{nil, NewArena(1 << 20)} {
		b := NewBuilder(s, NewRowIDs())
		if arena != nil {
			b.SetArena(arena)
		}
		write := func(n int, rollback bool) {
			for range n {
				b.Begin()
				b.Root.Fields[0].(*StringCol).AppendString("v")
				b.End()
			}
			if rollback {
				b.Begin()
				b.Root.Fields[0].(*StringCol).AppendString("x")
				b.Rollback()
			}
		}
		check := func(rec arrow.RecordBatch, want []SourceFile) {
			t.Helper()
			checkRecord(t, s, rec, len(want))
			col := column(t, rec, FieldSourceFile).(*array.Struct)
			buckets, keys := col.Field(0).(*array.String), col.Field(1).(*array.String)
			for i, w := range want {
				switch {
				case w == (SourceFile{}) && !col.IsNull(i):
					t.Errorf("row %d: p_source_file %q/%q, want null", i, buckets.Value(i), keys.Value(i))
				case w != (SourceFile{}) && (col.IsNull(i) || buckets.Value(i) != w.Bucket || keys.Value(i) != w.Key):
					t.Errorf("row %d: p_source_file null=%v %q/%q, want %+v", i, col.IsNull(i), buckets.Value(i), keys.Value(i), w)
				}
			}
			rec.Release()
		}
		rep := func(f SourceFile, n int) []SourceFile { return slices.Repeat([]SourceFile{f}, n) }

		write(2, false) // no file yet
		check(b.Build(), rep(SourceFile{}, 2))
		write(10000, false) // larger than the shared all-null column's first size
		check(b.Build(), rep(SourceFile{}, 10000))

		b.SetSourceFile(f1)
		write(3, true)
		b.SetSourceFile(f2)
		b.SetSourceFile(f1) // no row from f2: no run for it
		write(1, false)
		b.SetSourceFile(SourceFile{})
		write(2, true)
		b.SetSourceFile(f2)
		write(2, false)
		check(b.Build(), slices.Concat(rep(f1, 4), rep(SourceFile{}, 2), rep(f2, 2)))
		write(3, false) // the file carries over to the next batch
		check(b.Build(), rep(f2, 3))
		b.SetSourceFile(SourceFile{})
		write(1, false)
		check(b.Build(), rep(SourceFile{}, 1))
	}
}
