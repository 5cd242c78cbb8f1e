package otlp

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

type limits struct {
	maxValueBytes int
	maxAttrs      int
	maxDepth      int
}

// sanitizer walks decoded data once, in place: it truncates long values,
// drops attributes over the limit, replaces invalid UTF-8 and checks the
// nesting depth. It lives on the caller's stack and the walk allocates
// nothing when the data needs no change (TestSanitizeNoAllocs).
type sanitizer struct {
	limits
	truncated   int64
	dropped     int64
	invalidUTF8 int64
	// noTruncate is set while walking a log body: bodies are not attribute
	// values and are routinely longer than the attribute limit.
	noTruncate bool
	err        error
}

const replacementChar = "\uFFFD"

// str returns s with invalid UTF-8 replaced; changed reports a change.
func (s *sanitizer) str(v string) (fixed string, changed bool) {
	if utf8.ValidString(v) {
		return v, false
	}
	s.invalidUTF8++
	return strings.ToValidUTF8(v, replacementChar), true
}

// truncateString cuts v to at most n bytes at a rune boundary. The result
// is cloned so that the long original can be freed even if a store keeps
// the short value.
func truncateString(v string, n int) string {
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return strings.Clone(v[:n])
}

// value checks one AnyValue at the given depth (an attribute's value is
// depth 1) and reports false when it nests too deeply.
func (s *sanitizer) value(v pcommon.Value, depth int) bool {
	if depth > s.maxDepth {
		return false
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		str := v.Str()
		if !s.noTruncate && len(str) > s.maxValueBytes {
			str, _ = s.str(str) // replacing may change the length, so fix first
			if len(str) > s.maxValueBytes {
				str = truncateString(str, s.maxValueBytes)
				s.truncated++
			}
			v.SetStr(str)
		} else if fixed, changed := s.str(str); changed {
			v.SetStr(fixed)
		}
	case pcommon.ValueTypeBytes:
		if b := v.Bytes(); !s.noTruncate && b.Len() > s.maxValueBytes {
			raw := b.AsRaw()
			b.FromRaw(raw[:s.maxValueBytes:s.maxValueBytes])
			s.truncated++
		}
	case pcommon.ValueTypeMap:
		return s.nested(v.Map(), depth+1)
	case pcommon.ValueTypeSlice:
		sl := v.Slice()
		for i := 0; i < sl.Len(); i++ {
			if !s.value(sl.At(i), depth+1) {
				return false
			}
		}
	}
	return true
}

// nested walks the entries of a kvlist value. Entry counts inside values
// are not limited: they are part of one attribute's value, bounded by the
// request size.
func (s *sanitizer) nested(m pcommon.Map, depth int) bool {
	ok, badKey := true, false
	m.Range(func(k string, v pcommon.Value) bool {
		if !utf8.ValidString(k) {
			badKey = true
		}
		ok = s.value(v, depth)
		return ok
	})
	if ok && badKey {
		s.fixKeys(m)
	}
	return ok
}

// attrs applies the limits to one attribute map and returns how many
// attributes it dropped, for the element's dropped_attributes_count.
// drop=false keeps every attribute (metric points: attributes are the
// series identity and OTLP has no dropped count for them).
func (s *sanitizer) attrs(m pcommon.Map, drop bool) uint32 {
	n := m.Len()
	if n == 0 {
		return 0
	}
	var dropped int
	if drop && n > s.maxAttrs {
		// Keep the first maxAttrs, as the SDKs' attribute limits do.
		i := 0
		m.RemoveIf(func(string, pcommon.Value) bool {
			i++
			return i > s.maxAttrs
		})
		dropped = n - s.maxAttrs
		s.dropped += int64(dropped)
	}
	badKey := false
	m.Range(func(k string, v pcommon.Value) bool {
		if !utf8.ValidString(k) {
			badKey = true
		}
		if !s.value(v, 1) {
			s.err = fmt.Errorf("attribute %q: value nested deeper than the limit of %d levels", k, s.maxDepth)
			return false
		}
		return true
	})
	if s.err == nil && badKey {
		s.fixKeys(m)
	}
	return uint32(min(dropped, 1<<32-1))
}

// fixKeys replaces invalid UTF-8 in keys. Rare, so it may allocate.
func (s *sanitizer) fixKeys(m pcommon.Map) {
	type entry struct {
		k string
		v pcommon.Value
	}
	var moved []entry
	m.RemoveIf(func(k string, v pcommon.Value) bool {
		if utf8.ValidString(k) {
			return false
		}
		s.invalidUTF8++
		nv := pcommon.NewValueEmpty()
		v.CopyTo(nv)
		moved = append(moved, entry{strings.ToValidUTF8(k, replacementChar), nv})
		return true
	})
	for _, e := range moved {
		e.v.CopyTo(m.PutEmpty(e.k))
	}
}

func addDropped(cur, add uint32) uint32 {
	if cur > 1<<32-1-add {
		return 1<<32 - 1
	}
	return cur + add
}

func (s *sanitizer) resource(r pcommon.Resource) {
	if d := s.attrs(r.Attributes(), true); d > 0 {
		r.SetDroppedAttributesCount(addDropped(r.DroppedAttributesCount(), d))
	}
}

func (s *sanitizer) scope(sc pcommon.InstrumentationScope) {
	if v, bad := s.str(sc.Name()); bad {
		sc.SetName(v)
	}
	if v, bad := s.str(sc.Version()); bad {
		sc.SetVersion(v)
	}
	if d := s.attrs(sc.Attributes(), true); d > 0 {
		sc.SetDroppedAttributesCount(addDropped(sc.DroppedAttributesCount(), d))
	}
}

func (s *sanitizer) traceState(ts pcommon.TraceState) {
	if v, bad := s.str(ts.AsRaw()); bad {
		ts.FromRaw(v)
	}
}

func badSpanIDs(sp ptrace.Span) bool { return sp.TraceID().IsEmpty() || sp.SpanID().IsEmpty() }

// traces sanitizes td in place and removes spans with an all-zero trace
// or span id, returning how many it removed. On a depth error s.err is
// set, with the element's position, and the walk stops.
func (s *sanitizer) traces(td ptrace.Traces) (rejected int) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		if s.resource(rs.Resource()); s.err != nil {
			s.err = fmt.Errorf("resource_spans[%d].resource: %w", i, s.err)
			return rejected
		}
		if v, bad := s.str(rs.SchemaUrl()); bad {
			rs.SetSchemaUrl(v)
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			if s.scope(ss.Scope()); s.err != nil {
				s.err = fmt.Errorf("resource_spans[%d].scope_spans[%d].scope: %w", i, j, s.err)
				return rejected
			}
			if v, bad := s.str(ss.SchemaUrl()); bad {
				ss.SetSchemaUrl(v)
			}
			spans := ss.Spans()
			badIDs := 0
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				if badSpanIDs(sp) {
					badIDs++
					continue
				}
				if s.span(sp); s.err != nil {
					s.err = fmt.Errorf("resource_spans[%d].scope_spans[%d].spans[%d]: %w", i, j, k, s.err)
					return rejected
				}
			}
			if badIDs > 0 {
				spans.RemoveIf(badSpanIDs)
				rejected += badIDs
			}
		}
	}
	return rejected
}

func (s *sanitizer) span(sp ptrace.Span) {
	if v, bad := s.str(sp.Name()); bad {
		sp.SetName(v)
	}
	s.traceState(sp.TraceState())
	if st := sp.Status(); st.Message() != "" {
		if v, bad := s.str(st.Message()); bad {
			st.SetMessage(v)
		}
	}
	if d := s.attrs(sp.Attributes(), true); d > 0 {
		sp.SetDroppedAttributesCount(addDropped(sp.DroppedAttributesCount(), d))
	}
	if s.err != nil {
		return
	}
	evs := sp.Events()
	for i := 0; i < evs.Len(); i++ {
		ev := evs.At(i)
		if v, bad := s.str(ev.Name()); bad {
			ev.SetName(v)
		}
		if d := s.attrs(ev.Attributes(), true); d > 0 {
			ev.SetDroppedAttributesCount(addDropped(ev.DroppedAttributesCount(), d))
		}
		if s.err != nil {
			s.err = fmt.Errorf("events[%d]: %w", i, s.err)
			return
		}
	}
	links := sp.Links()
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		s.traceState(l.TraceState())
		if d := s.attrs(l.Attributes(), true); d > 0 {
			l.SetDroppedAttributesCount(addDropped(l.DroppedAttributesCount(), d))
		}
		if s.err != nil {
			s.err = fmt.Errorf("links[%d]: %w", i, s.err)
			return
		}
	}
}

// logs sanitizes ld in place. Log records with empty ids are valid (not
// every log belongs to a trace), so nothing is rejected here.
func (s *sanitizer) logs(ld plog.Logs) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		if s.resource(rl.Resource()); s.err != nil {
			s.err = fmt.Errorf("resource_logs[%d].resource: %w", i, s.err)
			return
		}
		if v, bad := s.str(rl.SchemaUrl()); bad {
			rl.SetSchemaUrl(v)
		}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			if s.scope(sl.Scope()); s.err != nil {
				s.err = fmt.Errorf("resource_logs[%d].scope_logs[%d].scope: %w", i, j, s.err)
				return
			}
			if v, bad := s.str(sl.SchemaUrl()); bad {
				sl.SetSchemaUrl(v)
			}
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if s.logRecord(lrs.At(k)); s.err != nil {
					s.err = fmt.Errorf("resource_logs[%d].scope_logs[%d].log_records[%d]: %w", i, j, k, s.err)
					return
				}
			}
		}
	}
}

func (s *sanitizer) logRecord(lr plog.LogRecord) {
	if v, bad := s.str(lr.SeverityText()); bad {
		lr.SetSeverityText(v)
	}
	if v, bad := s.str(lr.EventName()); bad {
		lr.SetEventName(v)
	}
	s.noTruncate = true
	ok := s.value(lr.Body(), 1)
	s.noTruncate = false
	if !ok {
		s.err = fmt.Errorf("body: value nested deeper than the limit of %d levels", s.maxDepth)
		return
	}
	if d := s.attrs(lr.Attributes(), true); d > 0 {
		lr.SetDroppedAttributesCount(addDropped(lr.DroppedAttributesCount(), d))
	}
}

// metrics sanitizes md in place.
func (s *sanitizer) metrics(md pmetric.Metrics) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		if s.resource(rm.Resource()); s.err != nil {
			s.err = fmt.Errorf("resource_metrics[%d].resource: %w", i, s.err)
			return
		}
		if v, bad := s.str(rm.SchemaUrl()); bad {
			rm.SetSchemaUrl(v)
		}
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			if s.scope(sm.Scope()); s.err != nil {
				s.err = fmt.Errorf("resource_metrics[%d].scope_metrics[%d].scope: %w", i, j, s.err)
				return
			}
			if v, bad := s.str(sm.SchemaUrl()); bad {
				sm.SetSchemaUrl(v)
			}
			ms := sm.Metrics()
			for k := 0; k < ms.Len(); k++ {
				if s.metric(ms.At(k)); s.err != nil {
					s.err = fmt.Errorf("resource_metrics[%d].scope_metrics[%d].metrics[%d]: %w", i, j, k, s.err)
					return
				}
			}
		}
	}
}

func (s *sanitizer) metric(m pmetric.Metric) {
	if v, bad := s.str(m.Name()); bad {
		m.SetName(v)
	}
	if v, bad := s.str(m.Description()); bad {
		m.SetDescription(v)
	}
	if v, bad := s.str(m.Unit()); bad {
		m.SetUnit(v)
	}
	if s.attrs(m.Metadata(), false); s.err != nil {
		return
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		numberPoints(s, m.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		numberPoints(s, m.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for i := 0; i < dps.Len() && s.err == nil; i++ {
			s.point(dps.At(i).Attributes(), dps.At(i).Exemplars(), true, i)
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for i := 0; i < dps.Len() && s.err == nil; i++ {
			s.point(dps.At(i).Attributes(), dps.At(i).Exemplars(), true, i)
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len() && s.err == nil; i++ {
			s.point(dps.At(i).Attributes(), pmetric.ExemplarSlice{}, false, i)
		}
	}
}

func numberPoints(s *sanitizer, dps pmetric.NumberDataPointSlice) {
	for i := 0; i < dps.Len() && s.err == nil; i++ {
		s.point(dps.At(i).Attributes(), dps.At(i).Exemplars(), true, i)
	}
}

func (s *sanitizer) point(attrs pcommon.Map, ex pmetric.ExemplarSlice, hasEx bool, i int) {
	s.attrs(attrs, false)
	for j := 0; hasEx && j < ex.Len() && s.err == nil; j++ {
		s.attrs(ex.At(j).FilteredAttributes(), false)
	}
	if s.err != nil {
		s.err = fmt.Errorf("data_points[%d]: %w", i, s.err)
	}
}
