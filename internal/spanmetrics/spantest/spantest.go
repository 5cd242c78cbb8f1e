// Package spantest helps the generators' tests: it converts spans recorded
// by the real OpenTelemetry Go SDK into ptrace.Traces, and records the
// samples a generator appends. Imported by tests only.
package spantest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Traces converts SDK spans into OTLP pdata, one ResourceSpans per
// distinct resource, in the order first seen, as an OTLP exporter would.
func Traces(spans []sdktrace.ReadOnlySpan) ptrace.Traces {
	td := ptrace.NewTraces()
	byRes := map[string]ptrace.SpanSlice{}
	for _, s := range spans {
		rk := s.Resource().Encoded(attribute.DefaultEncoder())
		ss, ok := byRes[rk]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			putAttrs(rs.Resource().Attributes(), s.Resource().Attributes())
			sc := rs.ScopeSpans().AppendEmpty()
			sc.Scope().SetName(s.InstrumentationScope().Name)
			ss = sc.Spans()
			byRes[rk] = ss
		}
		sp := ss.AppendEmpty()
		sc := s.SpanContext()
		sp.SetTraceID(pcommon.TraceID(sc.TraceID()))
		sp.SetSpanID(pcommon.SpanID(sc.SpanID()))
		if p := s.Parent(); p.IsValid() {
			sp.SetParentSpanID(pcommon.SpanID(p.SpanID()))
		}
		sp.SetName(s.Name())
		sp.SetKind(kind(s.SpanKind()))
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.StartTime()))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(s.EndTime()))
		switch s.Status().Code {
		case codes.Error:
			sp.Status().SetCode(ptrace.StatusCodeError)
		case codes.Ok:
			sp.Status().SetCode(ptrace.StatusCodeOk)
		}
		sp.Status().SetMessage(s.Status().Description)
		putAttrs(sp.Attributes(), s.Attributes())
	}
	return td
}

func kind(k trace.SpanKind) ptrace.SpanKind {
	switch k {
	case trace.SpanKindInternal:
		return ptrace.SpanKindInternal
	case trace.SpanKindServer:
		return ptrace.SpanKindServer
	case trace.SpanKindClient:
		return ptrace.SpanKindClient
	case trace.SpanKindProducer:
		return ptrace.SpanKindProducer
	case trace.SpanKindConsumer:
		return ptrace.SpanKindConsumer
	}
	return ptrace.SpanKindUnspecified
}

func putAttrs(m pcommon.Map, kvs []attribute.KeyValue) {
	for _, kv := range kvs {
		k := string(kv.Key)
		switch kv.Value.Type() {
		case attribute.BOOL:
			m.PutBool(k, kv.Value.AsBool())
		case attribute.INT64:
			m.PutInt(k, kv.Value.AsInt64())
		case attribute.FLOAT64:
			m.PutDouble(k, kv.Value.AsFloat64())
		default:
			m.PutStr(k, kv.Value.Emit())
		}
	}
}

// Sample is one recorded sample.
type Sample struct {
	T int64
	V float64
}

// Appendable records committed float samples by series. It implements
// storage.AppendableV2; safe for concurrent use.
type Appendable struct {
	mu     sync.Mutex
	series map[string][]Sample
	// Refuse, when set, makes Append fail for samples it returns true for.
	Refuse func(ls labels.Labels, t int64) bool
}

var _ storage.AppendableV2 = (*Appendable)(nil)

// NewAppendable returns an empty recorder.
func NewAppendable() *Appendable { return &Appendable{series: map[string][]Sample{}} }

// AppenderV2 implements storage.AppendableV2.
func (a *Appendable) AppenderV2(context.Context) storage.AppenderV2 { return &appender{a: a} }

type pending struct {
	key string
	s   Sample
}

type appender struct {
	a   *Appendable
	buf []pending
}

func (p *appender) Append(ref storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if h != nil || fh != nil {
		return 0, fmt.Errorf("spantest: histogram samples not expected")
	}
	if p.a.Refuse != nil && p.a.Refuse(ls, t) {
		return 0, storage.ErrOutOfOrderSample
	}
	p.buf = append(p.buf, pending{key: Key(ls), s: Sample{T: t, V: v}})
	return storage.SeriesRef(ls.Hash()), nil
}

func (p *appender) Commit() error {
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	for _, b := range p.buf {
		p.a.series[b.key] = append(p.a.series[b.key], b.s)
	}
	p.buf = nil
	return nil
}

func (p *appender) Rollback() error { p.buf = nil; return nil }

// Key spells a series as PromQL would select it: name{a="b", c="d"},
// labels sorted, without __name__ inside the braces.
func Key(ls labels.Labels) string {
	name := ls.Get(labels.MetricName)
	return name + labels.NewBuilder(ls).Del(labels.MetricName).Labels().String()
}

// Samples returns the samples of the series spelled as Key spells it, in
// append order.
func (a *Appendable) Samples(series string) []Sample {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.series[series])
}

// Last returns the latest value of every series whose name is metric,
// keyed by the series' labels without __name__, formatted like {a="b"}.
func (a *Appendable) Last(metric string) map[string]float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]float64{}
	prefix := metric + "{"
	for k, ss := range a.series {
		if !strings.HasPrefix(k, prefix) || len(ss) == 0 {
			continue
		}
		last := ss[0]
		for _, s := range ss {
			if s.T >= last.T {
				last = s
			}
		}
		out[k[len(metric):]] = last.V
	}
	return out
}

// Names returns the distinct series keys recorded, sorted.
func (a *Appendable) Names() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for k := range a.series {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Count returns the number of samples recorded.
func (a *Appendable) Count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, ss := range a.series {
		n += len(ss)
	}
	return n
}
