package otlp

import (
	"context"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// everyType holds one attribute of each type the SDK can send, and
// wantEveryType what pcommon.Map.AsRaw must give back for them.
var everyType = []attribute.KeyValue{
	attribute.String("str", "välue ✓"),
	attribute.Bool("bool", true),
	attribute.Int64("int", -42),
	attribute.Float64("float", 3.25),
	attribute.StringSlice("strs", []string{"a", "b"}),
	attribute.BoolSlice("bools", []bool{true, false}),
	attribute.Int64Slice("ints", []int64{1, 2, 3}),
	attribute.Float64Slice("floats", []float64{1.5, -2.5}),
	attribute.ByteSlice("bytes", []byte{0, 1, 0xff}),
	attribute.Slice("mixed", attribute.StringValue("x"), attribute.Int64Value(7)),
	attribute.Map("map", attribute.String("k", "v"), attribute.Map("inner", attribute.Bool("deep", true))),
}

var wantEveryType = map[string]any{
	"str":    "välue ✓",
	"bool":   true,
	"int":    int64(-42),
	"float":  3.25,
	"strs":   []any{"a", "b"},
	"bools":  []any{true, false},
	"ints":   []any{int64(1), int64(2), int64(3)},
	"floats": []any{1.5, -2.5},
	"bytes":  []byte{0, 1, 0xff},
	"mixed":  []any{"x", int64(7)},
	"map":    map[string]any{"k": "v", "inner": map[string]any{"deep": true}},
}

func checkRaw(t *testing.T, what string, got pcommon.Map, want map[string]any) {
	t.Helper()
	if g := got.AsRaw(); !reflect.DeepEqual(g, want) {
		t.Errorf("%s attributes:\n got %#v\nwant %#v", what, g, want)
	}
}

var testResource = resource.NewSchemaless(
	attribute.String("service.name", "checkout"),
	attribute.String("cloud.region", "us-east-1"),
	attribute.Int64("process.pid", 1234),
)

func TestSDKTraceExporters(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func(ctx context.Context, r *Receiver) (sdktrace.SpanExporter, error)
	}{
		{"grpc", func(ctx context.Context, r *Receiver) (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(r.GRPCAddr()), otlptracegrpc.WithInsecure(),
				otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
		}},
		{"grpc-gzip", func(ctx context.Context, r *Receiver) (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(r.GRPCAddr()), otlptracegrpc.WithInsecure(),
				otlptracegrpc.WithCompressor("gzip"), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
		}},
		{"http", func(ctx context.Context, r *Receiver) (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(r.HTTPAddr()), otlptracehttp.WithInsecure(),
				otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		}},
		{"http-gzip", func(ctx context.Context, r *Receiver) (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(r.HTTPAddr()), otlptracehttp.WithInsecure(),
				otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
				otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := &memConsumer{}
			r := startReceiver(t, Config{}, c)
			exp, err := tc.new(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			mem := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(
				sdktrace.WithResource(testResource),
				sdktrace.WithSyncer(exp),
				sdktrace.WithSyncer(mem),
			)
			emitSpans(ctx, tp.Tracer("test.scope", trace.WithInstrumentationVersion("1.2.3")))
			want := mem.GetSpans() // Shutdown empties the in-memory exporter
			if err := tp.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			compareSpans(t, want, c.spans())
			checkRaw(t, "resource", c.traces[0].ResourceSpans().At(0).Resource().Attributes(), map[string]any{
				"service.name": "checkout", "cloud.region": "us-east-1", "process.pid": int64(1234),
			})
			sc := c.traces[0].ResourceSpans().At(0).ScopeSpans().At(0).Scope()
			if sc.Name() != "test.scope" || sc.Version() != "1.2.3" {
				t.Errorf("scope = %q %q", sc.Name(), sc.Version())
			}
		})
	}
}

func emitSpans(ctx context.Context, tr trace.Tracer) {
	ctx, root := tr.Start(ctx, "GET /tickets", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(everyType...))
	ts, _ := trace.ParseTraceState("vendor=value,other=x")
	linked := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{8, 7, 6, 5, 4, 3, 2, 1},
		TraceFlags: trace.FlagsSampled,
		TraceState: ts,
	})
	_, child := tr.Start(ctx, "SELECT tickets", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.String("link.kind", "follows")}}),
		trace.WithAttributes(attribute.String("db.system", "postgresql")))
	child.AddEvent("retry", trace.WithAttributes(attribute.Int64("attempt", 2), attribute.Bool("final", false)))
	child.RecordError(errTest{}, trace.WithAttributes(attribute.String("extra", "yes")))
	child.SetStatus(codes.Error, "connection refused")
	child.End()
	root.SetStatus(codes.Ok, "")
	root.End()
}

type errTest struct{}

func (errTest) Error() string { return "dial tcp: connection refused" }

func compareSpans(t *testing.T, want tracetest.SpanStubs, got []ptrace.Span) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d spans, want %d", len(got), len(want))
	}
	byID := map[pcommon.SpanID]ptrace.Span{}
	for _, s := range got {
		byID[s.SpanID()] = s
	}
	for _, w := range want {
		g, ok := byID[pcommon.SpanID(w.SpanContext.SpanID())]
		if !ok {
			t.Fatalf("span %s missing", w.Name)
		}
		if g.TraceID() != pcommon.TraceID(w.SpanContext.TraceID()) {
			t.Errorf("%s: trace id %s, want %s", w.Name, g.TraceID(), w.SpanContext.TraceID())
		}
		if g.ParentSpanID() != pcommon.SpanID(w.Parent.SpanID()) {
			t.Errorf("%s: parent %s, want %s", w.Name, g.ParentSpanID(), w.Parent.SpanID())
		}
		if g.Name() != w.Name || int(g.Kind()) != int(w.SpanKind) {
			t.Errorf("name/kind %q/%v, want %q/%v", g.Name(), g.Kind(), w.Name, w.SpanKind)
		}
		if g.StartTimestamp().AsTime().UnixNano() != w.StartTime.UnixNano() || g.EndTimestamp().AsTime().UnixNano() != w.EndTime.UnixNano() {
			t.Errorf("%s: times differ", w.Name)
		}
		wantCode := map[codes.Code]ptrace.StatusCode{codes.Unset: ptrace.StatusCodeUnset, codes.Ok: ptrace.StatusCodeOk, codes.Error: ptrace.StatusCodeError}[w.Status.Code]
		if g.Status().Code() != wantCode || g.Status().Message() != w.Status.Description {
			t.Errorf("%s: status %v %q, want %v %q", w.Name, g.Status().Code(), g.Status().Message(), wantCode, w.Status.Description)
		}
		checkRaw(t, w.Name, g.Attributes(), rawOf(w.Attributes))
		if g.Events().Len() != len(w.Events) {
			t.Fatalf("%s: %d events, want %d", w.Name, g.Events().Len(), len(w.Events))
		}
		for i, we := range w.Events {
			ge := g.Events().At(i)
			if ge.Name() != we.Name || ge.Timestamp().AsTime().UnixNano() != we.Time.UnixNano() {
				t.Errorf("%s: event %d = %q, want %q", w.Name, i, ge.Name(), we.Name)
			}
			checkRaw(t, w.Name+" event "+we.Name, ge.Attributes(), rawOf(we.Attributes))
		}
		if g.Links().Len() != len(w.Links) {
			t.Fatalf("%s: %d links, want %d", w.Name, g.Links().Len(), len(w.Links))
		}
		for i, wl := range w.Links {
			gl := g.Links().At(i)
			if gl.TraceID() != pcommon.TraceID(wl.SpanContext.TraceID()) || gl.SpanID() != pcommon.SpanID(wl.SpanContext.SpanID()) {
				t.Errorf("%s: link %d ids differ", w.Name, i)
			}
			// The SDK exporter does not send a link's trace state
			// (otlptrace tracetransform.links), so there is nothing to compare.
			checkRaw(t, w.Name+" link", gl.Attributes(), rawOf(wl.Attributes))
		}
	}
}

// rawOf converts SDK attributes to what pcommon.Map.AsRaw returns.
func rawOf(kvs []attribute.KeyValue) map[string]any {
	out := map[string]any{}
	for _, kv := range kvs {
		out[string(kv.Key)] = rawValue(kv.Value)
	}
	return out
}

func rawValue(v attribute.Value) any {
	switch v.Type() {
	case attribute.BOOL:
		return v.AsBool()
	case attribute.INT64:
		return v.AsInt64()
	case attribute.FLOAT64:
		return v.AsFloat64()
	case attribute.STRING:
		return v.AsString()
	case attribute.BOOLSLICE:
		return anySlice(v.AsBoolSlice())
	case attribute.INT64SLICE:
		return anySlice(v.AsInt64Slice())
	case attribute.FLOAT64SLICE:
		return anySlice(v.AsFloat64Slice())
	case attribute.STRINGSLICE:
		return anySlice(v.AsStringSlice())
	case attribute.BYTESLICE:
		return v.AsByteSlice()
	case attribute.SLICE:
		var out []any
		for _, e := range v.AsSlice() {
			out = append(out, rawValue(e))
		}
		return out
	case attribute.MAP:
		return rawOf(v.AsMap())
	}
	return nil
}

func anySlice[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func TestRawOfEveryType(t *testing.T) {
	// Guards the helper the SDK comparisons rely on.
	if got := rawOf(everyType); !reflect.DeepEqual(got, wantEveryType) {
		t.Fatalf("rawOf(everyType) = %#v", got)
	}
}

func TestSDKLogExporters(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func(ctx context.Context, r *Receiver) (sdklog.Exporter, error)
	}{
		{"grpc", func(ctx context.Context, r *Receiver) (sdklog.Exporter, error) {
			return otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(r.GRPCAddr()), otlploggrpc.WithInsecure(),
				otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: false}))
		}},
		{"http", func(ctx context.Context, r *Receiver) (sdklog.Exporter, error) {
			return otlploghttp.New(ctx, otlploghttp.WithEndpoint(r.HTTPAddr()), otlploghttp.WithInsecure(),
				otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := &memConsumer{}
			r := startReceiver(t, Config{}, c)
			exp, err := tc.new(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			lp := sdklog.NewLoggerProvider(sdklog.WithResource(testResource), sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)))
			logger := lp.Logger("test.logs")
			traceID := trace.TraceID{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
			spanID := trace.SpanID{0xbb, 1, 2, 3, 4, 5, 6, 7}
			sctx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}))
			now := time.Unix(1_700_000_000, 123456789)
			var rec otellog.Record
			rec.SetTimestamp(now)
			rec.SetSeverity(otellog.SeverityError)
			rec.SetSeverityText("ERROR")
			rec.SetEventName("db.error")
			rec.SetBody(attribute.StringValue("FATAL: remaining connection slots are reserved"))
			rec.AddAttributes(everyType...)
			logger.Emit(sctx, rec)
			var rec2 otellog.Record
			rec2.SetBody(attribute.MapValue(attribute.String("msg", "structured"), attribute.Int64("n", 3)))
			logger.Emit(ctx, rec2)
			if err := lp.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			got := c.logRecords()
			if len(got) != 2 {
				t.Fatalf("got %d log records, want 2", len(got))
			}
			g := got[0]
			if g.TraceID() != pcommon.TraceID(traceID) || g.SpanID() != pcommon.SpanID(spanID) {
				t.Errorf("ids %s %s", g.TraceID(), g.SpanID())
			}
			if g.Timestamp().AsTime().UnixNano() != now.UnixNano() || g.SeverityNumber() != 17 || g.SeverityText() != "ERROR" || g.EventName() != "db.error" {
				t.Errorf("record fields: %v %v %q %q", g.Timestamp(), g.SeverityNumber(), g.SeverityText(), g.EventName())
			}
			if g.Body().Str() != "FATAL: remaining connection slots are reserved" {
				t.Errorf("body %q", g.Body().AsString())
			}
			checkRaw(t, "log", g.Attributes(), wantEveryType)
			if !reflect.DeepEqual(got[1].Body().AsRaw(), map[string]any{"msg": "structured", "n": int64(3)}) {
				t.Errorf("map body %#v", got[1].Body().AsRaw())
			}
			checkRaw(t, "log resource", c.logs[0].ResourceLogs().At(0).Resource().Attributes(), map[string]any{
				"service.name": "checkout", "cloud.region": "us-east-1", "process.pid": int64(1234),
			})
		})
	}
}

func TestSDKMetricExporters(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func(ctx context.Context, r *Receiver) (sdkmetric.Exporter, error)
	}{
		{"grpc", func(ctx context.Context, r *Receiver) (sdkmetric.Exporter, error) {
			return otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(r.GRPCAddr()), otlpmetricgrpc.WithInsecure(),
				otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}))
		}},
		{"http", func(ctx context.Context, r *Receiver) (sdkmetric.Exporter, error) {
			return otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(r.HTTPAddr()), otlpmetrichttp.WithInsecure(),
				otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := &memConsumer{}
			r := startReceiver(t, Config{}, c)
			exp, err := tc.new(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			// A long interval: the export happens at Shutdown, once.
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(testResource),
				sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
			m := mp.Meter("test.metrics")
			cnt, _ := m.Int64Counter("requests", otelmetric.WithUnit("{request}"))
			cnt.Add(ctx, 5, otelmetric.WithAttributes(attribute.String("route", "/tickets"), attribute.Int64("code", 200)))
			cnt.Add(ctx, 2, otelmetric.WithAttributes(attribute.String("route", "/orders"), attribute.Int64("code", 500)))
			h, _ := m.Float64Histogram("latency", otelmetric.WithUnit("s"))
			h.Record(ctx, 0.25)
			h.Record(ctx, 1.5)
			if err := mp.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			ms := c.allMetrics()
			req, ok := ms["requests"]
			if !ok || req.Type() != pmetric.MetricTypeSum || req.Unit() != "{request}" {
				t.Fatalf("requests metric missing or wrong: %v", ms)
			}
			vals := map[string]int64{}
			for i := 0; i < req.Sum().DataPoints().Len(); i++ {
				dp := req.Sum().DataPoints().At(i)
				route, _ := dp.Attributes().Get("route")
				vals[route.Str()] = dp.IntValue()
			}
			if !reflect.DeepEqual(vals, map[string]int64{"/tickets": 5, "/orders": 2}) {
				t.Errorf("counter points %v", vals)
			}
			lat, ok := ms["latency"]
			if !ok || lat.Type() != pmetric.MetricTypeHistogram {
				t.Fatalf("latency histogram missing")
			}
			dp := lat.Histogram().DataPoints().At(0)
			if dp.Count() != 2 || dp.Sum() != 1.75 {
				t.Errorf("histogram count %d sum %v", dp.Count(), dp.Sum())
			}
		})
	}
}
