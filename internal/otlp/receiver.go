// Package otlp holds the OTLP/gRPC and OTLP/HTTP receivers: they decode
// requests with pdata, enforce size and attribute limits, hand the data to
// a Consumer and translate the Consumer's answer into OTLP's backpressure
// and partial-success responses.
//
// Decisions worth knowing (the why is next to the code):
//   - Invalid UTF-8 in any string is replaced with U+FFFD and counted
//     (trenchcoat_receiver_invalid_utf8_strings_total) instead of failing the
//     request as proto3 would: one bad byte from one library must not cost
//     the whole batch.
//   - Attribute values longer than MaxAttributeValueBytes are truncated at a
//     rune boundary; attributes beyond MaxAttributes are dropped and added to
//     the element's dropped_attributes_count. Metric data point attributes
//     are only truncated, never dropped: they identify the series and OTLP
//     has no dropped count for them.
//   - Spans with an all-zero trace_id or span_id are rejected individually
//     through partial success; ids of the wrong length fail the request (400).
//   - Oversized requests: HTTP 413; gRPC RESOURCE_EXHAUSTED without RetryInfo
//     (what grpc-go itself answers for messages over the receive limit, and
//     OTLP clients treat RESOURCE_EXHAUSTED without RetryInfo as permanent).
//   - At most MaxConcurrentRequests requests are decoded at once (HTTP and
//     gRPC together); beyond that the receiver answers 429 /
//     RESOURCE_EXHAUSTED with retry info, so memory stays bounded.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"
)

// Consumer receives decoded data. It returns only after the data is durable
// (or an error). The Consumer may keep and mutate the data it is given; the
// receiver does not touch it after the call.
//
// Errors: errors.Is(err, store.ErrOverloaded) -> HTTP 429 + Retry-After /
// gRPC RESOURCE_EXHAUSTED with RetryInfo; store.ErrUnavailable -> 503 +
// Retry-After / UNAVAILABLE with RetryInfo; *store.PartialError -> success
// with partial_success (rejected count + message); anything else -> 500 /
// INTERNAL. Must be safe for concurrent use.
type Consumer interface {
	ConsumeTraces(ctx context.Context, td ptrace.Traces) error
	ConsumeLogs(ctx context.Context, ld plog.Logs) error
	ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error
}

// Config configures a Receiver. Zero values take the defaults below.
type Config struct {
	// GRPCAddr and HTTPAddr are the listen addresses ("127.0.0.1:4317",
	// "127.0.0.1:4318"); port 0 picks a free port. An empty address
	// disables that listener.
	GRPCAddr, HTTPAddr string
	// MaxRequestBytes bounds a request body both as received and after
	// decompression. Default 16 MiB.
	MaxRequestBytes int64
	// MaxAttributeValueBytes: longer string/bytes values are truncated and
	// counted. Default 8192.
	MaxAttributeValueBytes int
	// MaxAttributes per resource, scope, span, event, link and log record;
	// extras are dropped, counted and added to dropped_attributes_count.
	// Default 256.
	MaxAttributes int
	// MaxAnyValueDepth: more deeply nested AnyValues fail the request with
	// 400 / INVALID_ARGUMENT. Default 16.
	MaxAnyValueDepth int
	// MaxConcurrentRequests bounds requests being read, decoded or consumed
	// at once (HTTP and gRPC together). Default 32.
	MaxConcurrentRequests int
	// RetryAfter is the delay suggested to clients on 429/503 and in gRPC
	// RetryInfo. Default 1s.
	RetryAfter time.Duration
	// Registerer receives the self-metrics; nil means don't register.
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = 16 << 20
	}
	if c.MaxAttributeValueBytes <= 0 {
		c.MaxAttributeValueBytes = 8192
	}
	if c.MaxAttributes <= 0 {
		c.MaxAttributes = 256
	}
	if c.MaxAnyValueDepth <= 0 {
		c.MaxAnyValueDepth = 16
	}
	if c.MaxConcurrentRequests <= 0 {
		c.MaxConcurrentRequests = 32
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Receiver serves OTLP over gRPC and HTTP. Create with New.
type Receiver struct {
	cfg      Config
	consumer Consumer
	log      *slog.Logger
	m        *metrics
	limits   limits
	// slots bounds concurrent requests; a token is taken before the body
	// is read and returned after the Consumer answered.
	slots   chan struct{}
	handler http.Handler

	mu       sync.Mutex
	started  bool
	stopped  bool
	grpcSrv  *grpc.Server
	httpSrv  *http.Server
	grpcLis  net.Listener
	httpLis  net.Listener
	wg       sync.WaitGroup
	grpcAddr string
	httpAddr string
}

// New checks the config and builds a Receiver; nothing listens until Start.
func New(cfg Config, c Consumer) (*Receiver, error) {
	if c == nil {
		return nil, errors.New("otlp: nil consumer")
	}
	cfg.setDefaults()
	if cfg.MaxRequestBytes > 1<<31-1 {
		// gRPC's receive limit is an int and pooled buffers are sized from it.
		return nil, fmt.Errorf("otlp: MaxRequestBytes %d too large (max 2 GiB)", cfg.MaxRequestBytes)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("otlp: registering metrics: %w", err)
	}
	r := &Receiver{
		cfg:      cfg,
		consumer: c,
		log:      cfg.Logger,
		m:        m,
		limits: limits{
			maxValueBytes: cfg.MaxAttributeValueBytes,
			maxAttrs:      cfg.MaxAttributes,
			maxDepth:      cfg.MaxAnyValueDepth,
		},
		slots: make(chan struct{}, cfg.MaxConcurrentRequests),
	}
	r.handler = r.newHTTPMux()
	return r, nil
}

// Handler returns the /v1/traces, /v1/logs, /v1/metrics mux, so the
// receiver can also be mounted on another server. It works without Start.
func (r *Receiver) Handler() http.Handler { return r.handler }

// Start binds both listeners and serves in goroutines. It returns after
// the listeners are bound, so GRPCAddr and HTTPAddr are valid then.
func (r *Receiver) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("otlp: receiver already started")
	}
	if r.stopped {
		return errors.New("otlp: receiver shut down")
	}
	var lc net.ListenConfig
	if r.cfg.GRPCAddr != "" {
		lis, err := lc.Listen(ctx, "tcp", r.cfg.GRPCAddr)
		if err != nil {
			return fmt.Errorf("otlp: listening for gRPC on %s: %w", r.cfg.GRPCAddr, err)
		}
		r.grpcLis = lis
		r.grpcAddr = lis.Addr().String()
	}
	if r.cfg.HTTPAddr != "" {
		lis, err := lc.Listen(ctx, "tcp", r.cfg.HTTPAddr)
		if err != nil {
			if r.grpcLis != nil {
				r.grpcLis.Close()
			}
			return fmt.Errorf("otlp: listening for HTTP on %s: %w", r.cfg.HTTPAddr, err)
		}
		r.httpLis = lis
		r.httpAddr = lis.Addr().String()
	}
	r.started = true
	if r.grpcLis != nil {
		r.grpcSrv = r.newGRPCServer()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.grpcSrv.Serve(r.grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				r.log.Error("OTLP gRPC server stopped", "err", err)
			}
		}()
		r.log.Debug("OTLP/gRPC receiver listening", "addr", r.grpcAddr)
	}
	if r.httpLis != nil {
		r.httpSrv = &http.Server{
			Handler: r.handler,
			// Bodies are bounded in size, not in time, by the handler; the
			// timeouts keep idle or stalled connections from piling up.
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       2 * time.Minute,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.httpSrv.Serve(r.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Error("OTLP HTTP server stopped", "err", err)
			}
		}()
		r.log.Debug("OTLP/HTTP receiver listening", "addr", r.httpAddr)
	}
	return nil
}

// Shutdown stops accepting, lets in-flight requests finish until ctx is
// done, then closes what is left. Safe twice and without Start.
func (r *Receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	grpcSrv, httpSrv := r.grpcSrv, r.httpSrv
	r.mu.Unlock()

	var errs []error
	if httpSrv != nil {
		if err := httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("otlp: HTTP shutdown: %w", err))
			httpSrv.Close()
		}
	}
	if grpcSrv != nil {
		done := make(chan struct{})
		go func() {
			grpcSrv.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			grpcSrv.Stop()
			<-done
			errs = append(errs, fmt.Errorf("otlp: gRPC shutdown: %w", ctx.Err()))
		}
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

// GRPCAddr is the bound gRPC address ("" before Start or when disabled).
func (r *Receiver) GRPCAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.grpcAddr
}

// HTTPAddr is the bound HTTP address ("" before Start or when disabled).
func (r *Receiver) HTTPAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.httpAddr
}

// acquire takes a request slot without waiting: a receiver that is full
// answers with backpressure at once rather than queueing unbounded bodies.
func (r *Receiver) acquire() bool {
	select {
	case r.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (r *Receiver) release() { <-r.slots }
