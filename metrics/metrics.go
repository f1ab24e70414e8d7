// Package metrics keeps osprey serve's counters and gauges and writes them in the Prometheus
// text exposition format (GET /metrics). It is deliberately small: labelled counters and
// gauges, and gauges read from a function at scrape time.
package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Registry holds metric families. It is safe for concurrent use.
type Registry struct {
	mu       sync.Mutex
	families []*family
}

type family struct {
	name, help, kind string
	labels           []string
	mu               sync.Mutex
	values           map[string]*sample // by joined label values
	fn               func() float64     // a gauge read at scrape time
}

type sample struct {
	labels []string
	value  float64
}

// Vec is a counter or gauge family with labels.
type Vec struct{ f *family }

// Counter adds a counter family.
func (r *Registry) Counter(name, help string, labels ...string) Vec {
	return Vec{r.add(&family{name: name, help: help, kind: "counter", labels: labels})}
}

// Gauge adds a gauge family.
func (r *Registry) Gauge(name, help string, labels ...string) Vec {
	return Vec{r.add(&family{name: name, help: help, kind: "gauge", labels: labels})}
}

// GaugeFunc adds a gauge without labels whose value fn returns at scrape time.
func (r *Registry) GaugeFunc(name, help string, fn func() float64) {
	r.add(&family{name: name, help: help, kind: "gauge", fn: fn})
}

func (r *Registry) add(f *family) *family {
	f.values = map[string]*sample{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.families {
		if g.name == f.name {
			panic("BUG: metric " + f.name + " registered twice")
		}
	}
	r.families = append(r.families, f)
	return f
}

func (f *family) get(values []string) *sample {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("BUG: metric %s takes %d label values, got %d", f.name, len(f.labels), len(values)))
	}
	key := strings.Join(values, "\xff")
	s, ok := f.values[key]
	if !ok {
		s = &sample{labels: append([]string(nil), values...)}
		f.values[key] = s
	}
	return s
}

// Add adds delta to the sample of the label values.
func (v Vec) Add(delta float64, labels ...string) {
	v.f.mu.Lock()
	v.f.get(labels).value += delta
	v.f.mu.Unlock()
}

// Set sets the sample of the label values (gauges).
func (v Vec) Set(value float64, labels ...string) {
	v.f.mu.Lock()
	v.f.get(labels).value = value
	v.f.mu.Unlock()
}

// Value returns the sample of the label values.
func (v Vec) Value(labels ...string) float64 {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	return v.f.get(labels).value
}

// WriteText writes every family in the Prometheus text format, samples sorted by labels.
func (r *Registry) WriteText(w io.Writer) error {
	r.mu.Lock()
	families := append([]*family(nil), r.families...)
	r.mu.Unlock()
	var b strings.Builder
	for _, f := range families {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.kind)
		if f.fn != nil {
			fmt.Fprintf(&b, "%s %s\n", f.name, format(f.fn()))
			continue
		}
		f.mu.Lock()
		samples := make([]*sample, 0, len(f.values))
		for _, s := range f.values {
			samples = append(samples, &sample{labels: s.labels, value: s.value})
		}
		f.mu.Unlock()
		sort.Slice(samples, func(i, j int) bool {
			return strings.Join(samples[i].labels, "\xff") < strings.Join(samples[j].labels, "\xff")
		})
		for _, s := range samples {
			b.WriteString(f.name)
			if len(f.labels) > 0 {
				b.WriteByte('{')
				for i, l := range f.labels {
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "%s=%q", l, escapeLabel(s.labels[i]))
				}
				b.WriteByte('}')
			}
			fmt.Fprintf(&b, " %s\n", format(s.value))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func format(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// escapeLabel prepares a label value for %q, which escapes backslashes, quotes and newlines
// as the format wants; other control characters it would write as Go escapes are dropped.
func escapeLabel(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\n' {
			return -1
		}
		return r
	}, s)
}
