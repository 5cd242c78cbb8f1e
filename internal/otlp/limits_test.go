package otlp

import (
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var testLimits = limits{maxValueBytes: 8, maxAttrs: 3, maxDepth: 3}

func TestSanitizeAttributes(t *testing.T) {
	f := func(in map[string]any, want map[string]any, wantDropped uint32, wantTrunc, wantUTF8 int64, wantErr string) {
		t.Helper()
		m := pcommon.NewMap()
		if err := m.FromRaw(in); err != nil {
			t.Fatal(err)
		}
		s := sanitizer{limits: testLimits}
		dropped := s.attrs(m, true)
		if wantErr != "" {
			if s.err == nil || !strings.Contains(s.err.Error(), wantErr) {
				t.Fatalf("err %v, want %q", s.err, wantErr)
			}
			return
		}
		if s.err != nil {
			t.Fatalf("unexpected error %v", s.err)
		}
		if dropped != wantDropped || s.truncated != wantTrunc || s.invalidUTF8 != wantUTF8 {
			t.Errorf("dropped %d truncated %d utf8 %d, want %d %d %d", dropped, s.truncated, s.invalidUTF8, wantDropped, wantTrunc, wantUTF8)
		}
		if got := m.AsRaw(); want != nil && !reflect.DeepEqual(got, want) {
			t.Errorf("got %#v\nwant %#v", got, want)
		}
	}
	// untouched
	f(map[string]any{"a": "short", "b": int64(1)}, map[string]any{"a": "short", "b": int64(1)}, 0, 0, 0, "")
	// exactly at the value limit
	f(map[string]any{"a": "12345678"}, map[string]any{"a": "12345678"}, 0, 0, 0, "")
	// truncation at a byte limit
	f(map[string]any{"a": "123456789"}, map[string]any{"a": "12345678"}, 0, 1, 0, "")
	// truncation never splits a rune: "ééééé" is 10 bytes, 8 bytes is 4 runes
	f(map[string]any{"a": "ééééé"}, map[string]any{"a": "éééé"}, 0, 1, 0, "")
	// "abcdefg€" is 10 bytes; cutting at 8 would split the euro sign
	f(map[string]any{"a": "abcdefg€"}, map[string]any{"a": "abcdefg"}, 0, 1, 0, "")
	// bytes are cut too
	f(map[string]any{"a": []byte("0123456789")}, map[string]any{"a": []byte("01234567")}, 0, 1, 0, "")
	// values inside slices and maps are truncated
	f(map[string]any{"a": []any{"123456789", "x"}}, map[string]any{"a": []any{"12345678", "x"}}, 0, 1, 0, "")
	// invalid UTF-8 in values and keys
	f(map[string]any{"a": "caf\xe9"}, map[string]any{"a": "caf\uFFFD"}, 0, 0, 1, "")
	f(map[string]any{"k\xff": "v"}, map[string]any{"k\uFFFD": "v"}, 0, 0, 1, "")
	f(map[string]any{"m": map[string]any{"k\xff": "v"}}, map[string]any{"m": map[string]any{"k\uFFFD": "v"}}, 0, 0, 1, "")
	// too many attributes: the extras are dropped (which ones depends on map order of FromRaw)
	f(map[string]any{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}, nil, 2, 0, 0, "")
	// depth: 3 allowed, 4 refused
	f(map[string]any{"a": map[string]any{"b": map[string]any{"c": "leaf"}}}, nil, 0, 0, 0, "")
	f(map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"d": "leaf"}}}}, nil, 0, 0, 0, `attribute "a": value nested deeper than the limit of 3 levels`)
	f(map[string]any{"a": []any{[]any{[]any{"x"}}}}, nil, 0, 0, 0, "nested deeper")
}

func TestSanitizeDroppedCountAdds(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	for _, k := range []string{"r1", "r2", "r3", "r4"} {
		rs.Resource().Attributes().PutStr(k, "v")
	}
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID(goodTraceID))
	sp.SetSpanID(pcommon.SpanID(goodSpanID))
	sp.SetDroppedAttributesCount(10) // the SDK already dropped 10
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		sp.Attributes().PutStr(k, "v")
	}
	ev := sp.Events().AppendEmpty()
	for _, k := range []string{"a", "b", "c", "d"} {
		ev.Attributes().PutStr(k, "v")
	}
	l := sp.Links().AppendEmpty()
	for _, k := range []string{"a", "b", "c", "d"} {
		l.Attributes().PutStr(k, "v")
	}
	s := sanitizer{limits: testLimits}
	if rej := s.traces(td); rej != 0 || s.err != nil {
		t.Fatal(rej, s.err)
	}
	if rs.Resource().DroppedAttributesCount() != 1 || sp.DroppedAttributesCount() != 12 ||
		ev.DroppedAttributesCount() != 1 || l.DroppedAttributesCount() != 1 {
		t.Errorf("dropped counts: resource %d span %d event %d link %d", rs.Resource().DroppedAttributesCount(),
			sp.DroppedAttributesCount(), ev.DroppedAttributesCount(), l.DroppedAttributesCount())
	}
	// The first attributes are kept, in order.
	if got := sp.Attributes().AsRaw(); !reflect.DeepEqual(got, map[string]any{"a": "v", "b": "v", "c": "v"}) {
		t.Errorf("kept %v", got)
	}
	if s.dropped != 1+2+1+1 {
		t.Errorf("dropped total %d", s.dropped)
	}
}

func TestSanitizeLogsAndMetrics(t *testing.T) {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	long := strings.Repeat("x", 100)
	lr.Body().SetStr(long + "\xff") // bodies are not truncated, only repaired
	lr.Attributes().PutStr("a", long)
	lr.SetSeverityText("ERR\xff")
	s := sanitizer{limits: testLimits}
	s.logs(ld)
	if s.err != nil || lr.Body().Str() != long+"\uFFFD" || lr.SeverityText() != "ERR\uFFFD" {
		t.Errorf("log: err %v body len %d sev %q", s.err, len(lr.Body().Str()), lr.SeverityText())
	}
	if v, _ := lr.Attributes().Get("a"); len(v.Str()) != 8 {
		t.Errorf("log attribute not truncated: %d", len(v.Str()))
	}

	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("name\xff")
	dp := m.SetEmptySum().DataPoints().AppendEmpty()
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		dp.Attributes().PutStr(k, long)
	}
	s = sanitizer{limits: testLimits}
	s.metrics(md)
	// Point attributes are the series identity: truncated, never dropped.
	if s.err != nil || m.Name() != "name\uFFFD" || dp.Attributes().Len() != 5 || s.truncated != 5 || s.dropped != 0 {
		t.Errorf("metrics: err %v name %q attrs %d truncated %d dropped %d", s.err, m.Name(), dp.Attributes().Len(), s.truncated, s.dropped)
	}
}

func TestSanitizeNoAllocs(t *testing.T) {
	// The common case (nothing to fix) must not allocate: this walk runs
	// on every span of every request.
	td := realisticTraces(100)
	l := limits{maxValueBytes: 8192, maxAttrs: 256, maxDepth: 16}
	allocs := testing.AllocsPerRun(20, func() {
		s := sanitizer{limits: l}
		s.traces(td)
		if s.err != nil || s.truncated != 0 {
			panic("unexpected change")
		}
	})
	if allocs != 0 {
		t.Errorf("sanitizing clean traces allocates %v times per run", allocs)
	}
	ld := realisticLogs(100)
	allocs = testing.AllocsPerRun(20, func() {
		s := sanitizer{limits: l}
		s.logs(ld)
	})
	if allocs != 0 {
		t.Errorf("sanitizing clean logs allocates %v times per run", allocs)
	}
}

func TestJSONTooDeep(t *testing.T) {
	f := func(in string, limit int, want bool) {
		t.Helper()
		if got := jsonTooDeep([]byte(in), limit); got != want {
			t.Errorf("jsonTooDeep(%q, %d) = %v", in, limit, got)
		}
	}
	f(`{}`, 1, false)
	f(`{"a":[]}`, 1, true)
	f(`{"a":[]}`, 2, false)
	f(`{"a":"[[[[{{{{"}`, 1, false)
	f(`{"a":"\"[[[["}`, 1, false)
	f(`{"a":"\\"}`, 1, false)
	f(`{"a":"\\",`+`"b":[[]]}`, 2, true)
	f(strings.Repeat("[", 100), 99, true)
	f(`]]]]]][`, 1, false)
}

func TestParseContentType(t *testing.T) {
	f := func(in string, want bodyEncoding, wantOK bool) {
		t.Helper()
		got, ok := parseContentType(in)
		if ok != wantOK || (ok && got != want) {
			t.Errorf("parseContentType(%q) = %v %v", in, got, ok)
		}
	}
	f("application/x-protobuf", encProto, true)
	f("application/json", encJSON, true)
	f("Application/JSON; charset=utf-8", encJSON, true)
	f(" application/x-protobuf ;foo=bar", encProto, true)
	f("application/protobuf", 0, false)
	f("text/plain", 0, false)
	f("", 0, false)
}
