package otlp

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

const benchSpans = 1000

type nopConsumer struct{}

func (nopConsumer) ConsumeTraces(context.Context, ptrace.Traces) error    { return nil }
func (nopConsumer) ConsumeLogs(context.Context, plog.Logs) error          { return nil }
func (nopConsumer) ConsumeMetrics(context.Context, pmetric.Metrics) error { return nil }

func reportSpans(b *testing.B) {
	b.ReportMetric(float64(b.N)*benchSpans/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkDecodeTraces decodes a pre-encoded request of 1,000 realistic
// spans (15 resource attributes, 12 span attributes): "pdata" is the
// decoder alone, "with-limits" adds the attribute-limit walk the receiver
// runs on every request.
func BenchmarkDecodeTraces(b *testing.B) {
	body := mustProto(realisticTraces(benchSpans))
	l := limits{maxValueBytes: 8192, maxAttrs: 256, maxDepth: 16}
	b.Run("pdata", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			req := ptraceotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err != nil {
				b.Fatal(err)
			}
		}
		reportSpans(b)
	})
	b.Run("with-limits", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			req := ptraceotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err != nil {
				b.Fatal(err)
			}
			s := sanitizer{limits: l}
			s.traces(req.Traces())
		}
		reportSpans(b)
	})
	// All cores decoding separate requests, as concurrent clients do.
	b.Run("with-limits-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := ptraceotlp.NewExportRequest()
				if err := req.UnmarshalProto(body); err != nil {
					b.Error(err)
					return
				}
				s := sanitizer{limits: l}
				s.traces(req.Traces())
			}
		})
		reportSpans(b)
	})
}

// BenchmarkSanitizeTraces is the limit walk alone over clean data, the
// receiver's own cost on top of pdata's decode.
func BenchmarkSanitizeTraces(b *testing.B) {
	td := realisticTraces(benchSpans)
	l := limits{maxValueBytes: 8192, maxAttrs: 256, maxDepth: 16}
	b.ReportAllocs()
	for b.Loop() {
		s := sanitizer{limits: l}
		s.traces(td)
	}
	reportSpans(b)
}

// BenchmarkHTTPTraces goes through the whole OTLP/HTTP handler (body
// read, decode, limits, response) with a no-op consumer, no network.
func BenchmarkHTTPTraces(b *testing.B) {
	r, err := New(Config{}, nopConsumer{})
	if err != nil {
		b.Fatal(err)
	}
	h := r.Handler()
	for _, tc := range []struct {
		name, ct string
		body     []byte
	}{
		{"protobuf", "application/x-protobuf", mustProto(realisticTraces(benchSpans))},
		{"json", "application/json", mustJSON(realisticTraces(benchSpans))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.body)))
			rd := bytes.NewReader(tc.body)
			req, _ := http.NewRequest(http.MethodPost, "/v1/traces", rd)
			req.Header.Set("Content-Type", tc.ct)
			w := &recorder{header: http.Header{}}
			for b.Loop() {
				rd.Reset(tc.body)
				req.ContentLength = int64(len(tc.body))
				w.reset()
				h.ServeHTTP(w, req)
				if w.code != 200 {
					b.Fatalf("status %d: %s", w.code, w.body.Bytes())
				}
			}
			reportSpans(b)
		})
	}
}

// BenchmarkGRPCTraces sends pre-built requests over loopback gRPC, one
// at a time, with a no-op consumer.
func BenchmarkGRPCTraces(b *testing.B) {
	r := startReceiver(b, Config{}, nopConsumer{})
	client := ptraceotlp.NewGRPCClient(dialGRPC(b, r))
	req := ptraceotlp.NewExportRequestFromTraces(realisticTraces(benchSpans))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Export(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	reportSpans(b)
}
