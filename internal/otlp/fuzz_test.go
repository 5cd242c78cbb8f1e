package otlp

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// checkingConsumer verifies what the receiver promises about data it
// hands on: limits applied, valid UTF-8, no all-zero span ids.
type checkingConsumer struct {
	lim limits
	err error
}

func (c *checkingConsumer) checkMap(m pcommon.Map, drop bool) {
	if drop && m.Len() > c.lim.maxAttrs {
		c.err = fmt.Errorf("%d attributes over the limit", m.Len())
	}
	m.Range(func(k string, v pcommon.Value) bool {
		if !utf8.ValidString(k) {
			c.err = fmt.Errorf("invalid UTF-8 key %q", k)
		}
		if v.Type() == pcommon.ValueTypeStr && (len(v.Str()) > c.lim.maxValueBytes || !utf8.ValidString(v.Str())) {
			c.err = fmt.Errorf("value %q not sanitized", v.Str())
		}
		return true
	})
}

func (c *checkingConsumer) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		c.checkMap(rs.Resource().Attributes(), true)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			for k := 0; k < ss.Spans().Len(); k++ {
				sp := ss.Spans().At(k)
				if sp.TraceID().IsEmpty() || sp.SpanID().IsEmpty() {
					c.err = fmt.Errorf("span with empty id consumed")
				}
				if !utf8.ValidString(sp.Name()) {
					c.err = fmt.Errorf("invalid UTF-8 span name")
				}
				c.checkMap(sp.Attributes(), true)
			}
		}
	}
	return nil
}

func (c *checkingConsumer) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			for k := 0; k < sl.LogRecords().Len(); k++ {
				lr := sl.LogRecords().At(k)
				c.checkMap(lr.Attributes(), true)
				if lr.Body().Type() == pcommon.ValueTypeStr && !utf8.ValidString(lr.Body().Str()) {
					c.err = fmt.Errorf("invalid UTF-8 body")
				}
			}
		}
	}
	return nil
}

func (c *checkingConsumer) ConsumeMetrics(context.Context, pmetric.Metrics) error { return nil }

type fuzzSeed struct {
	body   []byte
	isJSON bool
}

func fuzzHTTP(f *testing.F, path string, seeds []fuzzSeed) {
	for _, s := range seeds {
		f.Add(s.body, s.isJSON)
	}
	f.Add([]byte{}, false)
	f.Add([]byte("{}"), true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"\u00e9"}]}]}]}`), true)
	c := &checkingConsumer{}
	// Small limits so the fuzzer reaches the limit paths.
	r, err := New(Config{MaxRequestBytes: 1 << 20, MaxAttributeValueBytes: 16, MaxAttributes: 4, MaxAnyValueDepth: 4}, c)
	if err != nil {
		f.Fatal(err)
	}
	c.lim = r.limits
	h := r.Handler()
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		ct := "application/x-protobuf"
		if isJSON {
			ct = "application/json"
		}
		req, _ := http.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		w := &recorder{header: http.Header{}}
		c.err = nil
		h.ServeHTTP(w, req)
		switch w.code {
		case 200, 400, 413:
		default:
			t.Fatalf("status %d for %q", w.code, body)
		}
		if c.err != nil {
			t.Fatalf("consumer got unsanitized data: %v", c.err)
		}
		if w.header.Get("Content-Type") != ct {
			t.Fatalf("response Content-Type %q for %s request", w.header.Get("Content-Type"), ct)
		}
	})
}

func FuzzHTTPTraces(f *testing.F) {
	td := realisticTraces(3)
	nested := nestedTraces(6)
	fuzzHTTP(f, "/v1/traces", []fuzzSeed{
		{mustProto(td), false},
		{mustProto(nested), false},
		{rawSpanRequest(rawSpan(goodTraceID[:5], goodSpanID, "x", nil)), false},
		{rawSpanRequest(rawSpan(goodTraceID, goodSpanID, "wide", rawBoolAttr(rawBoolAttr(nil, "a"), "b\xff"))), false},
		{mustJSON(td), true},
	})
}

func FuzzHTTPLogs(f *testing.F) {
	ld := realisticLogs(2)
	j, _ := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	fuzzHTTP(f, "/v1/logs", []fuzzSeed{{mustLogsProto(ld), false}, {j, true}})
}
