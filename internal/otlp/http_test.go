package otlp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func doPost(t *testing.T, client *http.Client, url, contentType, contentEncoding string, body io.Reader, contentLength int64) httpResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = contentLength
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if contentEncoding != "" {
		req.Header.Set("Content-Encoding", contentEncoding)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return httpResult{resp.StatusCode, resp.Header, b}
}

// statusMessage decodes a google.rpc.Status error body in the response's
// encoding.
func statusMessage(t *testing.T, res httpResult) string {
	t.Helper()
	var st spb.Status
	var err error
	switch ct := res.header.Get("Content-Type"); ct {
	case "application/json":
		err = protojson.Unmarshal(res.body, &st)
	case "application/x-protobuf":
		err = proto.Unmarshal(res.body, &st)
	default:
		t.Fatalf("error body has Content-Type %q", ct)
	}
	if err != nil {
		t.Fatalf("error body is not a google.rpc.Status: %v (%q)", err, res.body)
	}
	return st.GetMessage()
}

// zeros is an endless reader of zero bytes that never holds more than
// one buffer, so a "100 MB body" costs the test no memory.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > z.n {
		n = z.n
	}
	clear(p[:n])
	z.n -= n
	return int(n), nil
}

func gzipBytes(t testing.TB, src io.Reader) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := io.Copy(w, src); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

func zstdBytes(t testing.TB, src io.Reader) []byte {
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if _, err := io.Copy(w, src); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

func TestHTTPBadInput(t *testing.T) {
	c := &memConsumer{}
	reg := prometheus.NewRegistry()
	r := startReceiver(t, Config{Registerer: reg}, c)
	client := newHTTPClient(t)
	base := "http://" + r.HTTPAddr()
	good := mustProto(realisticTraces(10))
	goodJSON := mustJSON(realisticTraces(3))

	// After every bad request, a good one must still be accepted.
	checkStillServing := func(t *testing.T) {
		t.Helper()
		before := c.spanCount()
		res := doPost(t, client, base+"/v1/traces", "application/x-protobuf", "", bytes.NewReader(good), int64(len(good)))
		if res.status != 200 || c.spanCount() != before+10 {
			t.Fatalf("good request after bad one: status %d, spans %d -> %d", res.status, before, c.spanCount())
		}
	}

	type tc struct {
		name, path, ct, ce string
		body               func() (io.Reader, int64)
		status             int
		msg                string // substring of the google.rpc.Status message
		consumed           int    // spans the consumer must have got
	}
	fixed := func(b []byte) func() (io.Reader, int64) {
		return func() (io.Reader, int64) { return bytes.NewReader(b), int64(len(b)) }
	}
	bomb := gzipBytes(t, &zeros{n: 64 << 20})
	zbomb := zstdBytes(t, &zeros{n: 64 << 20})
	var million []byte
	for i := range 1_000_000 {
		million = rawBoolAttr(million, strings.ToLower(itoa36(i)))
	}
	millionReq := rawSpanRequest(rawSpan(goodTraceID, goodSpanID, "wide", million))
	badUTF8 := realisticTraces(1)
	sp := badUTF8.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	sp.SetName("bad\xffname")
	sp.Attributes().PutStr("bad.value", "caf\xe9")
	sp.Attributes().PutStr("bad\xfekey", "v")
	zeroID := realisticTraces(2)
	zeroID.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1).SetTraceID([16]byte{})

	for _, tt := range []tc{
		{name: "truncated protobuf", ct: "application/x-protobuf", body: fixed(good[:len(good)/2]),
			status: 400, msg: "decoding protobuf ExportTraceServiceRequest"},
		{name: "wrong content type", ct: "text/plain", body: fixed(good), status: 415, msg: "unsupported Content-Type"},
		{name: "no content type", body: fixed(good), status: 415, msg: "unsupported Content-Type"},
		{name: "unsupported encoding", ct: "application/x-protobuf", ce: "br", body: fixed(good), status: 415, msg: "unsupported Content-Encoding"},
		{name: "invalid JSON", ct: "application/json", body: fixed([]byte(`{"resourceSpans":[{"scopeSpans":[`)),
			status: 400, msg: "decoding JSON ExportTraceServiceRequest"},
		{name: "JSON not an object", ct: "application/json", body: fixed([]byte(`[1,2]`)), status: 400, msg: "decoding JSON"},
		{name: "valid JSON", ct: "application/json; charset=utf-8", body: fixed(goodJSON), status: 200, consumed: 3},
		{name: "non-UTF-8 strings", ct: "application/x-protobuf", body: fixed(mustProto(badUTF8)), status: 200, consumed: 1},
		{name: "100 MB body with Content-Length", ct: "application/x-protobuf",
			body: func() (io.Reader, int64) { return &zeros{n: 100 << 20}, 100 << 20 }, status: 413, msg: "exceeds the limit"},
		{name: "100 MB body chunked", ct: "application/x-protobuf",
			body: func() (io.Reader, int64) { return &zeros{n: 100 << 20}, -1 }, status: 413, msg: "exceeds the limit"},
		{name: "gzip bomb", ct: "application/x-protobuf", ce: "gzip", body: fixed(bomb), status: 413, msg: "decompressed request body exceeds"},
		{name: "zstd bomb", ct: "application/x-protobuf", ce: "zstd", body: fixed(zbomb), status: 413, msg: "exceeds"},
		{name: "corrupt gzip", ct: "application/x-protobuf", ce: "gzip", body: fixed([]byte("not gzip at all")), status: 400, msg: "decompressing gzip body"},
		{name: "gzip ok", ct: "application/x-protobuf", ce: "gzip", body: fixed(gzipBytes(t, bytes.NewReader(good))), status: 200, consumed: 10},
		{name: "zstd ok", ct: "application/x-protobuf", ce: "zstd", body: fixed(zstdBytes(t, bytes.NewReader(good))), status: 200, consumed: 10},
		{name: "empty body protobuf", ct: "application/x-protobuf", body: fixed(nil), status: 200},
		{name: "empty object JSON", ct: "application/json", body: fixed([]byte(`{}`)), status: 200},
		{name: "deeply nested AnyValue", ct: "application/x-protobuf", body: fixed(mustProto(nestedTraces(17))),
			status: 400, msg: `attribute "deep": value nested deeper than the limit of 16 levels`},
		{name: "nested at the limit", ct: "application/x-protobuf", body: fixed(mustProto(nestedTraces(16))), status: 200, consumed: 1},
		{name: "nested at the limit JSON", ct: "application/json", body: fixed(mustJSON(nestedTraces(16))), status: 200, consumed: 1},
		{name: "deeply nested JSON", ct: "application/json", body: fixed(mustJSON(nestedTraces(40))), status: 400, msg: "nested deeper"},
		{name: "JSON nested 200k levels", ct: "application/json", body: fixed(deepJSON(200_000)), status: 400, msg: "decoding JSON"},
		{name: "a million attributes", ct: "application/x-protobuf", body: fixed(millionReq), status: 200, consumed: 1},
		{name: "trace id of 5 bytes", ct: "application/x-protobuf",
			body:   fixed(rawSpanRequest(rawSpan(goodTraceID[:5], goodSpanID, "x", nil))),
			status: 400, msg: "invalid TraceID length"},
		{name: "span id of 9 bytes", ct: "application/x-protobuf",
			body:   fixed(rawSpanRequest(rawSpan(goodTraceID, append(goodSpanID, 9), "x", nil))),
			status: 400, msg: "SpanID"},
		{name: "JSON trace id too short", ct: "application/json",
			body:   fixed([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102","spanId":"0102030405060708","name":"x"}]}]}]}`)),
			status: 400, msg: "length mismatch"},
		{name: "zero trace id rejected by partial success", ct: "application/x-protobuf", body: fixed(mustProto(zeroID)), status: 200, consumed: 1},
		{name: "unknown path", path: "/v1/profiles", ct: "application/x-protobuf", body: fixed(good), status: 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := c.spanCount()
			path := tt.path
			if path == "" {
				path = "/v1/traces"
			}
			body, n := tt.body()
			res := doPost(t, client, base+path, tt.ct, tt.ce, body, n)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d (body %.200q)", res.status, tt.status, res.body)
			}
			if tt.msg != "" {
				if msg := statusMessage(t, res); !strings.Contains(msg, tt.msg) {
					t.Errorf("message %q does not contain %q", msg, tt.msg)
				}
			}
			if got := c.spanCount() - before; got != tt.consumed {
				t.Errorf("consumer got %d spans, want %d", got, tt.consumed)
			}
			if tt.status != 404 {
				checkStillServing(t)
			}
		})
	}

	// What the non-UTF-8 and million-attribute requests left behind.
	var utf8Span, wide ptrace.Span
	for _, s := range c.spans() {
		switch s.Name() {
		case "bad\uFFFDname":
			utf8Span = s
		case "wide":
			wide = s
		}
	}
	if utf8Span == (ptrace.Span{}) {
		t.Fatal("span with replaced invalid UTF-8 name not found")
	}
	if v, _ := utf8Span.Attributes().Get("bad.value"); v.Str() != "caf\uFFFD" {
		t.Errorf("bad.value = %q", v.Str())
	}
	if _, ok := utf8Span.Attributes().Get("bad\uFFFDkey"); !ok {
		t.Errorf("invalid key not replaced: %v", utf8Span.Attributes().AsRaw())
	}
	if got := counterValue(t, reg, "trenchcoat_receiver_invalid_utf8_strings_total", nil); got != 3 {
		t.Errorf("invalid_utf8 counter = %v, want 3", got)
	}
	if wide.Attributes().Len() != 256 || wide.DroppedAttributesCount() != 1_000_000-256 {
		t.Errorf("wide span: %d attributes, %d dropped", wide.Attributes().Len(), wide.DroppedAttributesCount())
	}
	if got := counterValue(t, reg, "trenchcoat_receiver_dropped_attributes_total", nil); got != 1_000_000-256 {
		t.Errorf("dropped counter = %v", got)
	}
	if got := counterValue(t, reg, "trenchcoat_receiver_refused_spans_total", map[string]string{"transport": "http"}); got < 2 {
		t.Errorf("refused spans = %v, want at least the nested and zero-id ones", got)
	}
}

// deepJSON nests arrayValue depth levels inside one span attribute.
func deepJSON(depth int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"x","attributes":[{"key":"a","value":`)
	for range depth {
		b.WriteString(`{"arrayValue":{"values":[`)
	}
	b.WriteString(`{"stringValue":"leaf"}`)
	for range depth {
		b.WriteString(`]}}`)
	}
	b.WriteString(`}]}]}]}]}`)
	return b.Bytes()
}

func itoa36(i int) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 36 {
		b = append(b, digits[i%36])
	}
	return string(b)
}

func TestHTTPResponses(t *testing.T) {
	c := &memConsumer{}
	r := startReceiver(t, Config{}, c)
	client := newHTTPClient(t)
	url := "http://" + r.HTTPAddr() + "/v1/traces"

	t.Run("wrong method", func(t *testing.T) {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
			t.Fatalf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
	t.Run("protobuf answer to protobuf", func(t *testing.T) {
		b := mustProto(realisticTraces(1))
		res := doPost(t, client, url, "application/x-protobuf", "", bytes.NewReader(b), int64(len(b)))
		if res.status != 200 || res.header.Get("Content-Type") != "application/x-protobuf" {
			t.Fatalf("%d %q", res.status, res.header.Get("Content-Type"))
		}
		resp := ptraceotlp.NewExportResponse()
		if err := resp.UnmarshalProto(res.body); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("JSON answer to JSON", func(t *testing.T) {
		b := mustJSON(realisticTraces(1))
		res := doPost(t, client, url, "application/json", "", bytes.NewReader(b), int64(len(b)))
		if res.status != 200 || res.header.Get("Content-Type") != "application/json" {
			t.Fatalf("%d %q", res.status, res.header.Get("Content-Type"))
		}
		resp := ptraceotlp.NewExportResponse()
		if err := resp.UnmarshalJSON(res.body); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("JSON error body for JSON request", func(t *testing.T) {
		res := doPost(t, client, url, "application/json", "", strings.NewReader("{"), 1)
		if res.status != 400 || res.header.Get("Content-Type") != "application/json" {
			t.Fatalf("%d %q", res.status, res.header.Get("Content-Type"))
		}
		if msg := statusMessage(t, res); !strings.HasPrefix(msg, "decoding JSON ExportTraceServiceRequest: ") {
			t.Errorf("message %q", msg)
		}
	})
	t.Run("partial success for zero ids", func(t *testing.T) {
		td := realisticTraces(3)
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetSpanID([8]byte{})
		b := mustProto(td)
		res := doPost(t, client, url, "application/x-protobuf", "", bytes.NewReader(b), int64(len(b)))
		resp := ptraceotlp.NewExportResponse()
		if err := resp.UnmarshalProto(res.body); err != nil {
			t.Fatal(err)
		}
		if ps := resp.PartialSuccess(); ps.RejectedSpans() != 1 || !strings.Contains(ps.ErrorMessage(), "empty trace_id or span_id") {
			t.Errorf("partial success %d %q", ps.RejectedSpans(), ps.ErrorMessage())
		}
	})
	t.Run("logs and metrics paths", func(t *testing.T) {
		b, _ := (&plog.ProtoMarshaler{}).MarshalLogs(realisticLogs(4))
		res := doPost(t, client, "http://"+r.HTTPAddr()+"/v1/logs", "application/x-protobuf", "", bytes.NewReader(b), int64(len(b)))
		if res.status != 200 || len(c.logRecords()) != 4 {
			t.Fatalf("logs: %d, %d records", res.status, len(c.logRecords()))
		}
		res = doPost(t, client, "http://"+r.HTTPAddr()+"/v1/metrics", "application/json", "", strings.NewReader(`{"resourceMetrics":[]}`), -1)
		if res.status != 200 {
			t.Fatalf("metrics: %d", res.status)
		}
	})
}

func TestHandlerWithoutStart(t *testing.T) {
	// Handler can be mounted elsewhere without Start.
	r, err := New(Config{}, &memConsumer{})
	if err != nil {
		t.Fatal(err)
	}
	h := r.Handler()
	b := mustProto(realisticTraces(2))
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "/v1/traces", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/x-protobuf")
	w := &recorder{header: http.Header{}}
	h.ServeHTTP(w, req)
	if w.code != 200 {
		t.Fatalf("status %d", w.code)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// recorder is a minimal ResponseWriter (httptest.ResponseRecorder works
// too; this one keeps the fuzz and bench loops allocation-light).
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }
func (w *recorder) WriteHeader(c int)   { w.code = c }
func (w *recorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	return w.body.Write(b)
}
func (w *recorder) reset() {
	clear(w.header)
	w.code = 0
	w.body.Reset()
}
