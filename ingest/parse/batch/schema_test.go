package batch

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// TestCompileErrors checks that Compile rejects what it cannot build, naming the field. The
// schemas are built by hand: logschema.Validate would catch most of these first.
func TestCompileErrors(t *testing.T) {
	str := logschema.Value{Type: logschema.TypeString}
	for _, tc := range []struct {
		name   string
		fields []logschema.Field
		want   string
	}{
		{"unknown type", []logschema.Field{{Name: "a", Value: logschema.Value{Type: "decimal"}}}, `field a: unknown type "decimal"`},
		{"array without element", []logschema.Field{{Name: "a", Value: logschema.Value{Type: logschema.TypeArray}}}, "field a: array without element"},
		{"unknown indicator", []logschema.Field{{Name: "a", Value: logschema.Value{Type: logschema.TypeString, Indicators: []string{"nope"}}}}, `field a: unknown indicator "nope"`},
		{"bad time format", []logschema.Field{{Name: "t", Value: logschema.Value{Type: logschema.TypeTimestamp, TimeFormat: "whenever"}}}, `field t: unknown time format "whenever"`},
		{"nested", []logschema.Field{{Name: "o", Value: logschema.Value{Type: logschema.TypeObject, Fields: []logschema.Field{
			{Name: "ok", Value: str}, {Name: "bad", Value: logschema.Value{Type: "nope"}}}}}}, "field o.bad"},
		{"array element", []logschema.Field{{Name: "l", Value: logschema.Value{Type: logschema.TypeArray, Element: &logschema.Value{Type: "nope"}}}}, "field l[]"},
		{"indicator on an array", []logschema.Field{{Name: "l", Value: logschema.Value{Type: logschema.TypeArray, Element: &str, Indicators: []string{"bogus"}}}}, `field l[]: unknown indicator "bogus"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(&logschema.Schema{Schema: "Test.Bad", Fields: tc.fields})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	// Compiling an array's element must not change the schema it came from.
	elem := &logschema.Value{Type: logschema.TypeString, Indicators: []string{"email"}}
	ls := &logschema.Schema{Schema: "Test.Arr", Fields: []logschema.Field{
		{Name: "l", Value: logschema.Value{Type: logschema.TypeArray, Element: elem, Indicators: []string{"ip"}}}}}
	s, err := Compile(ls)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(elem.Indicators, []string{"email"}) {
		t.Errorf("Compile changed the element's indicators to %q", elem.Indicators)
	}
	if got := len(s.Fields[0].Elem.Scanners); got != 2 {
		t.Errorf("element has %d scanners, want 2 (the array's and its own)", got)
	}
}

// TestFieldIndex checks field lookup by name in small objects (a scan) and large ones (a map).
func TestFieldIndex(t *testing.T) {
	for _, n := range []int{1, 8, 9, 30} {
		var sb strings.Builder
		sb.WriteString("schema: Test.Many\nfields:\n")
		for i := range n {
			fmt.Fprintf(&sb, "  - name: f%d\n    type: string\n", i)
		}
		fmt.Fprintf(&sb, "  - name: obj\n    type: object\n    fields:\n")
		for i := range n {
			fmt.Fprintf(&sb, "      - name: g%d\n        type: int\n", i)
		}
		s := compile(t, sb.String())
		obj := s.Fields[n]
		for i := range n {
			if got := s.FieldIndex(fmt.Sprintf("f%d", i)); got != i {
				t.Errorf("%d fields: FieldIndex(f%d) = %d", n, i, got)
			}
			if got := obj.FieldIndex(fmt.Sprintf("g%d", i)); got != i {
				t.Errorf("%d fields: obj.FieldIndex(g%d) = %d", n, i, got)
			}
		}
		for _, name := range []string{"", "f", fmt.Sprintf("f%d", n), "F0", "g0"} {
			if got := s.FieldIndex(name); got != -1 {
				t.Errorf("%d fields: FieldIndex(%q) = %d, want -1", n, name, got)
			}
		}
		if got := s.FieldIndex("obj"); got != n {
			t.Errorf("FieldIndex(obj) = %d, want %d", got, n)
		}
	}
}

// TestCheckValue checks the validate rules: allow, deny, ip and cidr.
func TestCheckValue(t *testing.T) {
	s := compile(t, `
schema: Test.Check
fields:
  - name: plain
    type: string
  - name: allow
    type: string
    validate:
      allow: [A, B]
  - name: deny
    type: string
    validate:
      deny: [X]
  - name: ip4
    type: string
    validate:
      ip: ipv4
  - name: ip6
    type: string
    validate:
      ip: ipv6
  - name: anyip
    type: string
    validate:
      ip: any
  - name: cidr4
    type: string
    validate:
      cidr: ipv4
  - name: cidr6
    type: string
    validate:
      cidr: ipv6
`)
	for _, tc := range []struct {
		field, value string
		ok           bool
	}{
		{"plain", "anything", true},
		{"allow", "A", true},
		{"allow", "B", true},
		{"allow", "C", false},
		{"allow", "a", false},
		{"allow", "", false},
		{"deny", "X", false},
		{"deny", "Y", true},
		{"deny", "", true},
		{"ip4", "1.2.3.4", true},
		{"ip4", "::1", false},
		{"ip4", "::ffff:1.2.3.4", false},
		{"ip4", "1.2.3", false},
		{"ip4", "", false},
		{"ip6", "2001:db8::1", true},
		{"ip6", "::ffff:1.2.3.4", false},
		{"ip6", "1.2.3.4", false},
		{"anyip", "1.2.3.4", true},
		{"anyip", "2001:db8::1", true},
		{"anyip", "host", false},
		{"cidr4", "10.0.0.0/8", true},
		{"cidr4", "10.0.0.1", false},
		{"cidr4", "2001:db8::/32", false},
		{"cidr6", "2001:db8::/32", true},
		{"cidr6", "10.0.0.0/8", false},
	} {
		n := s.Fields[s.FieldIndex(tc.field)]
		err := n.CheckValue([]byte(tc.value))
		if (err == nil) != tc.ok {
			t.Errorf("%s: CheckValue(%q) = %v, want ok %v", tc.field, tc.value, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %q does not name the field", tc.field, err)
		}
		if got := n.HasChecks(); got != (tc.field != "plain") {
			t.Errorf("%s: HasChecks = %v", tc.field, got)
		}
	}
}

// TestNestedArrays checks arrays of arrays and arrays inside objects inside arrays, with null
// and empty arrays at each level, and a rollback in the middle of a nested array.
func TestNestedArrays(t *testing.T) {
	s := compile(t, `
schema: Test.Nested
fields:
  - name: matrix
    type: array
    element:
      type: array
      element:
        type: int
  - name: groups
    type: array
    element:
      type: object
      fields:
        - name: names
          type: array
          element:
            type: string
`)
	// nil is null; the rows are [[1 2] [] null [3]], null, [] and [[0]].
	matrices := [][][]int64{{{1, 2}, {}, nil, {3}}, nil, {}, {{0}}}
	groups := [][][]string{{{"a"}, nil, {}}, {{"b", "c"}}, nil, {}}
	b := NewBuilder(s, NewRowIDs())
	write := func(m [][]int64, g [][]string) {
		outer := b.Root.Fields[0].(*ListCol)
		inner := outer.Elem.(*ListCol)
		if m == nil {
			outer.AppendNull()
		} else {
			for _, row := range m {
				if row == nil {
					inner.AppendNull()
					continue
				}
				for _, v := range row {
					inner.Elem.(*IntCol).Append(v)
				}
				inner.Close()
			}
			outer.Close()
		}
		gl := b.Root.Fields[1].(*ListCol)
		if g == nil {
			gl.AppendNull()
			return
		}
		obj := gl.Elem.(*StructCol)
		for _, names := range g {
			obj.Append()
			appendList(obj.Fields[0].(*ListCol), names)
		}
		gl.Close()
	}
	for i := range matrices {
		// A row abandoned halfway through its nested arrays comes first.
		b.Begin()
		outer := b.Root.Fields[0].(*ListCol)
		outer.Elem.(*ListCol).Elem.(*IntCol).Append(99)
		outer.Elem.(*ListCol).Close()
		outer.Elem.(*ListCol).Elem.(*IntCol).Append(98)
		b.Rollback()
		b.Begin()
		write(matrices[i], groups[i])
		b.End()
	}
	rec := b.Build()
	defer rec.Release()
	checkRecord(t, s, rec, len(matrices))
	outer := rec.Column(0).(*array.List)
	inner := outer.ListValues().(*array.List)
	ints := inner.ListValues().(*array.Int32)
	gl := rec.Column(1).(*array.List)
	objs := gl.ListValues().(*array.Struct)
	names := objs.Field(0).(*array.List)
	for i := range matrices {
		var gotM [][]int64
		if !outer.IsNull(i) {
			gotM = [][]int64{}
			start, end := outer.ValueOffsets(i)
			for j := start; j < end; j++ {
				if inner.IsNull(int(j)) {
					gotM = append(gotM, nil)
					continue
				}
				row := []int64{}
				s, e := inner.ValueOffsets(int(j))
				for k := s; k < e; k++ {
					row = append(row, int64(ints.Value(int(k))))
				}
				gotM = append(gotM, row)
			}
		}
		if fmt.Sprintf("%#v", gotM) != fmt.Sprintf("%#v", matrices[i]) {
			t.Errorf("row %d matrix = %#v, want %#v", i, gotM, matrices[i])
		}
		var gotG [][]string
		if !gl.IsNull(i) {
			gotG = [][]string{}
			start, end := gl.ValueOffsets(i)
			for j := start; j < end; j++ {
				gotG = append(gotG, strs(names, int(j)))
			}
		}
		if fmt.Sprintf("%#v", gotG) != fmt.Sprintf("%#v", groups[i]) {
			t.Errorf("row %d groups = %#v, want %#v", i, gotG, groups[i])
		}
	}
	if !arrow.TypeEqual(s.Arrow.Field(0).Type, arrow.ListOf(arrow.ListOf(arrow.PrimitiveTypes.Int32))) {
		t.Errorf("matrix type %v", s.Arrow.Field(0).Type)
	}
}
