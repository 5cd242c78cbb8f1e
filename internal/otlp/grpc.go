package otlp

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"
	grpcencoding "google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip decompressor
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/tap"
)

const (
	methodTraces  = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	methodLogs    = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
	methodMetrics = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
)

func methodSignal(m string) (signal, bool) {
	switch m {
	case methodTraces:
		return sigTraces, true
	case methodLogs:
		return sigLogs, true
	case methodMetrics:
		return sigMetrics, true
	}
	return 0, false
}

func (r *Receiver) newGRPCServer() *grpc.Server {
	s := grpc.NewServer(
		// grpc-go enforces this before and after decompression (for every
		// registered compressor it reads at most limit+1 bytes), answering
		// RESOURCE_EXHAUSTED without RetryInfo before our handler runs.
		grpc.MaxRecvMsgSize(int(r.cfg.MaxRequestBytes)),
		grpc.InTapHandle(r.tap),
		grpc.StatsHandler(grpcStats{r}),
		grpc.ForceServerCodecV2(rawCodec{}),
	)
	r.registerServices(s)
	return s
}

// tap takes a request slot before gRPC reads the message, so a full
// receiver refuses without buffering the body. The slot is released when
// the stream's context ends, which gRPC guarantees for every stream,
// whatever way the RPC ends.
func (r *Receiver) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	sig, ok := methodSignal(info.FullMethodName)
	if !ok {
		return ctx, nil
	}
	if !r.acquire() {
		e := overloaded("too many concurrent requests, retry later")
		r.m.request(transportGRPC, sig, e.outcome)
		return nil, e.grpcStatus(r.cfg.RetryAfter).Err()
	}
	context.AfterFunc(ctx, r.release)
	return ctx, nil
}

type sigKey struct{}

// grpcStats records request sizes (after decompression) per signal.
type grpcStats struct{ r *Receiver }

func (g grpcStats) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if sig, ok := methodSignal(info.FullMethodName); ok {
		return context.WithValue(ctx, sigKey{}, sig)
	}
	return ctx
}

func (g grpcStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if in, ok := s.(*stats.InPayload); ok {
		if sig, ok := ctx.Value(sigKey{}).(signal); ok {
			g.r.m.items[transportGRPC][sig].requestBytes.Observe(float64(in.Length))
		}
	}
}

func (grpcStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (grpcStats) HandleConn(context.Context, stats.ConnStats)                       {}

// The three OTLP services are registered with our own descriptors and a
// pass-through codec instead of pdata's generated ones: the handler gets
// the raw message and runs the same decode path as OTLP/HTTP, so a
// malformed message is answered INVALID_ARGUMENT with the decoder's
// message (grpc-go answers INTERNAL when its codec fails), and both
// transports stay one code path.
var otlpServices = []struct {
	service string
	sig     signal
}{
	{"opentelemetry.proto.collector.trace.v1.TraceService", sigTraces},
	{"opentelemetry.proto.collector.logs.v1.LogsService", sigLogs},
	{"opentelemetry.proto.collector.metrics.v1.MetricsService", sigMetrics},
}

func (r *Receiver) registerServices(s *grpc.Server) {
	for _, svc := range otlpServices {
		sig := svc.sig
		s.RegisterService(&grpc.ServiceDesc{
			ServiceName: svc.service,
			HandlerType: (*any)(nil),
			Methods: []grpc.MethodDesc{{
				MethodName: "Export",
				Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
					var req rawMessage
					if err := dec(&req); err != nil {
						return nil, err
					}
					body := req.buf.ReadOnlyData()
					resp, e := r.exportBody(ctx, sig, transportGRPC, body, encProto, req.free)
					if e != nil {
						return nil, e.grpcStatus(r.cfg.RetryAfter).Err()
					}
					return &rawMessage{out: resp}, nil
				},
			}},
			Metadata: "opentelemetry/proto/collector",
		}, struct{}{})
	}
}

// rawMessage carries an undecoded request (buf) or an encoded response
// (out) through rawCodec.
type rawMessage struct {
	buf mem.Buffer
	out []byte
}

func (m *rawMessage) free() {
	if m.buf != nil {
		m.buf.Free()
		m.buf = nil
	}
}

// rawCodec hands message bytes to the handler untouched. It is forced on
// our server only, which serves nothing but the OTLP services.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMessage)
	if !ok {
		return nil, fmt.Errorf("BUG: rawCodec cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.out)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("BUG: rawCodec cannot unmarshal into %T", v)
	}
	// One contiguous buffer, referenced (not copied) when gRPC received
	// the message in one piece; freed by the handler after decoding.
	m.buf = data.MaterializeToBuffer(mem.DefaultBufferPool())
	return nil
}

// gRPC compressors are a process-wide registry that grpc-go requires to
// be filled at init time; registering "zstd" here lets OTLP exporters
// configured with zstd compression talk to us.
func init() {
	grpcencoding.RegisterCompressor(zstdCompressor{})
}

type zstdCompressor struct{}

func (zstdCompressor) Name() string { return "zstd" }

var zstdEncPool = sync.Pool{New: func() any {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		panic("BUG: zstd.NewWriter with static options: " + err.Error())
	}
	return e
}}

func (zstdCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	e := zstdEncPool.Get().(*zstd.Encoder)
	e.Reset(w)
	return &zstdWriter{Encoder: e}, nil
}

type zstdWriter struct {
	*zstd.Encoder
}

func (z *zstdWriter) Close() error {
	err := z.Encoder.Close() // flushes the frame; the encoder stays reusable
	z.Encoder.Reset(nil)
	zstdEncPool.Put(z.Encoder)
	return err
}

// Decompress returns a pooled decoder; gRPC closes the reader when done
// (it reads at most MaxRecvMsgSize+1 bytes from it), which returns the
// decoder to the pool.
func (zstdCompressor) Decompress(r io.Reader) (io.Reader, error) {
	d := zstdPool.Get().(*zstd.Decoder)
	if err := d.Reset(r); err != nil {
		zstdPool.Put(d)
		return nil, err
	}
	return &zstdReader{d: d}, nil
}

type zstdReader struct {
	d *zstd.Decoder
}

func (z *zstdReader) Read(p []byte) (int, error) {
	if z.d == nil {
		return 0, io.EOF
	}
	return z.d.Read(p)
}

func (z *zstdReader) Close() error {
	if z.d != nil {
		_ = z.d.Reset(nil)
		zstdPool.Put(z.d)
		z.d = nil
	}
	return nil
}
