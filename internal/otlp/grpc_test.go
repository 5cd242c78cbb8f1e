package otlp

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func dialGRPC(t testing.TB, r *Receiver) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(256<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// sendRaw sends body as an ExportTraceServiceRequest without encoding
// it, so tests can send what pdata would refuse to produce.
func sendRaw(ctx context.Context, conn *grpc.ClientConn, method string, body []byte, opts ...grpc.CallOption) error {
	var reply rawMessage
	opts = append(opts, grpc.ForceCodecV2(rawCodec{}))
	err := conn.Invoke(ctx, method, &rawMessage{out: body}, &reply, opts...)
	reply.free()
	return err
}

func retryInfo(st *status.Status) *errdetails.RetryInfo {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri
		}
	}
	return nil
}

func TestGRPCBadInput(t *testing.T) {
	c := &memConsumer{}
	const limit = 4 << 20
	r := startReceiver(t, Config{MaxRequestBytes: limit}, c)
	conn := dialGRPC(t, r)
	client := ptraceotlp.NewGRPCClient(conn)
	ctx := context.Background()
	good := ptraceotlp.NewExportRequestFromTraces(realisticTraces(10))
	goodBytes := mustProto(realisticTraces(10))

	badUTF8 := realisticTraces(1)
	badUTF8.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetName("bad\xffname")
	zeroID := realisticTraces(2)
	zeroID.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetTraceID([16]byte{})
	big := bytes.Repeat([]byte{0}, 64<<20) // compresses to almost nothing

	for _, tt := range []struct {
		name     string
		send     func() error
		code     codes.Code
		msg      string
		consumed int
	}{
		{name: "good", send: func() error { _, err := client.Export(ctx, good); return err }, code: codes.OK, consumed: 10},
		{name: "good raw", send: func() error { return sendRaw(ctx, conn, methodTraces, goodBytes) }, code: codes.OK, consumed: 10},
		{name: "zstd", send: func() error {
			_, err := client.Export(ctx, good, grpc.UseCompressor("zstd"))
			return err
		}, code: codes.OK, consumed: 10},
		{name: "gzip", send: func() error {
			_, err := client.Export(ctx, good, grpc.UseCompressor("gzip"))
			return err
		}, code: codes.OK, consumed: 10},
		{name: "truncated protobuf", send: func() error { return sendRaw(ctx, conn, methodTraces, goodBytes[:len(goodBytes)/2]) },
			code: codes.InvalidArgument, msg: "decoding protobuf ExportTraceServiceRequest"},
		{name: "trace id of 5 bytes", send: func() error {
			return sendRaw(ctx, conn, methodTraces, rawSpanRequest(rawSpan(goodTraceID[:5], goodSpanID, "x", nil)))
		}, code: codes.InvalidArgument, msg: "invalid TraceID length"},
		{name: "deeply nested AnyValue", send: func() error {
			_, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(nestedTraces(17)))
			return err
		}, code: codes.InvalidArgument, msg: "nested deeper than the limit of 16"},
		{name: "non-UTF-8", send: func() error {
			_, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(badUTF8))
			return err
		}, code: codes.OK, consumed: 1},
		{name: "empty request", send: func() error { return sendRaw(ctx, conn, methodTraces, nil) }, code: codes.OK},
		{name: "oversized", send: func() error { return sendRaw(ctx, conn, methodTraces, big[:limit+1]) },
			code: codes.ResourceExhausted, msg: "larger than max"},
		{name: "gzip bomb", send: func() error { return sendRaw(ctx, conn, methodTraces, big, grpc.UseCompressor("gzip")) },
			code: codes.ResourceExhausted, msg: "larger than max"},
		{name: "zstd bomb", send: func() error { return sendRaw(ctx, conn, methodTraces, big, grpc.UseCompressor("zstd")) },
			code: codes.ResourceExhausted, msg: "larger than max"},
		{name: "zero trace id", send: func() error {
			resp, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(zeroID))
			if err == nil && resp.PartialSuccess().RejectedSpans() != 1 {
				t.Errorf("rejected spans %d, want 1", resp.PartialSuccess().RejectedSpans())
			}
			return err
		}, code: codes.OK, consumed: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := c.spanCount()
			err := tt.send()
			st := status.Convert(err)
			if st.Code() != tt.code {
				t.Fatalf("code %v (%v), want %v", st.Code(), err, tt.code)
			}
			if !strings.Contains(st.Message(), tt.msg) {
				t.Errorf("message %q does not contain %q", st.Message(), tt.msg)
			}
			if tt.code == codes.ResourceExhausted && retryInfo(st) != nil {
				t.Errorf("size refusal carries RetryInfo: clients would retry a request that can never fit")
			}
			if got := c.spanCount() - before; got != tt.consumed {
				t.Errorf("consumed %d spans, want %d", got, tt.consumed)
			}
			// The server keeps serving.
			if _, err := client.Export(ctx, good); err != nil {
				t.Fatalf("good request after %s: %v", tt.name, err)
			}
		})
	}
	spans := c.spans()
	found := false
	for _, s := range spans {
		if s.Name() == "bad\uFFFDname" {
			found = true
		}
	}
	if !found {
		t.Error("span with replaced invalid UTF-8 not consumed")
	}
}

func TestGRPCLogsAndMetricsServices(t *testing.T) {
	c := &memConsumer{}
	r := startReceiver(t, Config{}, c)
	conn := dialGRPC(t, r)
	ctx := context.Background()
	lb := mustLogsProto(realisticLogs(5))
	if err := sendRaw(ctx, conn, methodLogs, lb); err != nil {
		t.Fatal(err)
	}
	if n := len(c.logRecords()); n != 5 {
		t.Fatalf("got %d log records", n)
	}
	if err := sendRaw(ctx, conn, methodLogs, lb[:len(lb)-3]); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(status.Convert(err).Message(), "ExportLogsServiceRequest") {
		t.Fatalf("truncated logs: %v", err)
	}
	if err := sendRaw(ctx, conn, methodMetrics, []byte{0x0a, 0x05}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(status.Convert(err).Message(), "ExportMetricsServiceRequest") {
		t.Fatalf("truncated metrics: %v", err)
	}
	if err := sendRaw(ctx, conn, "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export", nil); status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown service: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	r, err := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, &memConsumer{})
	if err != nil {
		t.Fatal(err)
	}
	if r.GRPCAddr() != "" || r.HTTPAddr() != "" {
		t.Error("addresses before Start")
	}
	// Shutdown without Start, twice.
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}

	r2, _ := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, &memConsumer{})
	if err := r2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(r2.GRPCAddr(), ":0") || strings.HasSuffix(r2.HTTPAddr(), ":0") || r2.GRPCAddr() == "" {
		t.Fatalf("addresses %q %q", r2.GRPCAddr(), r2.HTTPAddr())
	}
	if err := r2.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	if err := r2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Occupied port: Start fails and leaves nothing listening.
	r3, _ := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: r2.GRPCAddr()}, &memConsumer{})
	r4, _ := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, &memConsumer{})
	if err := r4.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r3.cfg.HTTPAddr = r4.HTTPAddr()
	if err := r3.Start(ctx); err == nil {
		t.Error("Start on a busy port succeeded")
	}
	r3.Shutdown(ctx)
	r4.Shutdown(ctx)

	if _, err := New(Config{}, nil); err == nil {
		t.Error("New with nil consumer succeeded")
	}
}

func TestShutdownWithStuckConsumer(t *testing.T) {
	// A consumer that never returns must not hang Shutdown past its ctx.
	c := &memConsumer{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	r, err := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn := dialGRPC(t, r)
	done := make(chan error, 1)
	go func() {
		_, err := ptraceotlp.NewGRPCClient(conn).Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(realisticTraces(1)))
		done <- err
	}()
	<-c.entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := r.Shutdown(ctx); err == nil {
		t.Error("Shutdown with a stuck request returned nil")
	}
	// The forced stop cancels the request's context, which frees the consumer.
	if err := <-done; err == nil {
		t.Error("stuck request succeeded")
	}
}

func mustLogsProto(ld plog.Logs) []byte {
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		panic(err)
	}
	return b
}
