package otlp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/trenchcoat/trenchcoat/internal/store"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestBackpressure(t *testing.T) {
	c := &memConsumer{}
	reg := prometheus.NewRegistry()
	r := startReceiver(t, Config{Registerer: reg, RetryAfter: 3 * time.Second}, c)
	client := newHTTPClient(t)
	url := "http://" + r.HTTPAddr() + "/v1/traces"
	grpcClient := ptraceotlp.NewGRPCClient(dialGRPC(t, r))
	body := mustProto(realisticTraces(5))
	ctx := context.Background()

	f := func(consumerErr error, wantHTTP int, wantRetryAfter string, wantCode codes.Code, wantRetryInfo bool) {
		t.Helper()
		c.setErr(consumerErr)
		defer c.setErr(nil)
		res := doPost(t, client, url, "application/x-protobuf", "", bytes.NewReader(body), int64(len(body)))
		if res.status != wantHTTP || res.header.Get("Retry-After") != wantRetryAfter {
			t.Errorf("%v: HTTP %d Retry-After %q, want %d %q", consumerErr, res.status, res.header.Get("Retry-After"), wantHTTP, wantRetryAfter)
		}
		if msg := statusMessage(t, res); !strings.Contains(msg, consumerErr.Error()) {
			t.Errorf("%v: HTTP message %q", consumerErr, msg)
		}
		_, err := grpcClient.Export(ctx, ptraceotlp.NewExportRequestFromTraces(realisticTraces(5)))
		st := status.Convert(err)
		if st.Code() != wantCode {
			t.Errorf("%v: gRPC %v, want %v", consumerErr, st.Code(), wantCode)
		}
		ri := retryInfo(st)
		if (ri != nil) != wantRetryInfo {
			t.Errorf("%v: RetryInfo %v, want present=%v", consumerErr, ri, wantRetryInfo)
		}
		if ri != nil && ri.GetRetryDelay().AsDuration() != 3*time.Second {
			t.Errorf("%v: retry delay %v", consumerErr, ri.GetRetryDelay().AsDuration())
		}
	}
	f(store.ErrOverloaded, 429, "3", codes.ResourceExhausted, true)
	f(fmt.Errorf("wal queue full: %w", store.ErrOverloaded), 429, "3", codes.ResourceExhausted, true)
	f(store.ErrUnavailable, 503, "3", codes.Unavailable, true)
	f(errors.New("disk on fire"), 500, "", codes.Internal, false)

	if got := counterValue(t, reg, "trenchcoat_receiver_refused_spans_total", nil); got != 40 {
		t.Errorf("refused spans = %v, want 40", got)
	}
	if got := counterValue(t, reg, "trenchcoat_receiver_requests_total", map[string]string{"outcome": "overloaded"}); got != 4 {
		t.Errorf("overloaded requests = %v, want 4", got)
	}
}

func TestPartialSuccess(t *testing.T) {
	c := &memConsumer{}
	reg := prometheus.NewRegistry()
	r := startReceiver(t, Config{Registerer: reg}, c)
	client := newHTTPClient(t)
	base := "http://" + r.HTTPAddr()
	conn := dialGRPC(t, r)
	ctx := context.Background()
	c.setErr(&store.PartialError{Rejected: 2, Reason: "2 items too old"})

	// traces, HTTP JSON and gRPC
	body := mustJSON(realisticTraces(5))
	res := doPost(t, client, base+"/v1/traces", "application/json", "", bytes.NewReader(body), int64(len(body)))
	tr := ptraceotlp.NewExportResponse()
	if err := tr.UnmarshalJSON(res.body); err != nil || res.status != 200 {
		t.Fatalf("%d %v", res.status, err)
	}
	if tr.PartialSuccess().RejectedSpans() != 2 || tr.PartialSuccess().ErrorMessage() != "2 items too old" {
		t.Errorf("HTTP traces partial success %d %q", tr.PartialSuccess().RejectedSpans(), tr.PartialSuccess().ErrorMessage())
	}
	tr, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(realisticTraces(5)))
	if err != nil || tr.PartialSuccess().RejectedSpans() != 2 {
		t.Errorf("gRPC traces: %v %d", err, tr.PartialSuccess().RejectedSpans())
	}

	// logs
	lb := mustLogsProto(realisticLogs(4))
	res = doPost(t, client, base+"/v1/logs", "application/x-protobuf", "", bytes.NewReader(lb), int64(len(lb)))
	lr := plogotlp.NewExportResponse()
	if err := lr.UnmarshalProto(res.body); err != nil || lr.PartialSuccess().RejectedLogRecords() != 2 {
		t.Errorf("HTTP logs partial success: %v %d", err, lr.PartialSuccess().RejectedLogRecords())
	}
	lr, err = plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(realisticLogs(4)))
	if err != nil || lr.PartialSuccess().RejectedLogRecords() != 2 {
		t.Errorf("gRPC logs: %v %d", err, lr.PartialSuccess().RejectedLogRecords())
	}

	// metrics
	md := pmetric.NewMetrics()
	g := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("connections")
	gauge := g.SetEmptyGauge()
	for i := range 3 {
		dp := gauge.DataPoints().AppendEmpty()
		dp.SetIntValue(int64(i))
	}
	mr, err := pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md))
	if err != nil || mr.PartialSuccess().RejectedDataPoints() != 2 || mr.PartialSuccess().ErrorMessage() != "2 items too old" {
		t.Errorf("gRPC metrics: %v %d", err, mr.PartialSuccess().RejectedDataPoints())
	}

	// 5+5 spans sent, 2+2 rejected.
	if got := counterValue(t, reg, "trenchcoat_receiver_accepted_spans_total", nil); got != 6 {
		t.Errorf("accepted spans %v, want 6", got)
	}
	if got := counterValue(t, reg, "trenchcoat_receiver_refused_spans_total", nil); got != 4 {
		t.Errorf("refused spans %v, want 4", got)
	}
	if got := counterValue(t, reg, "trenchcoat_receiver_accepted_log_records_total", map[string]string{"transport": "grpc"}); got != 2 {
		t.Errorf("accepted grpc log records %v, want 2", got)
	}
	_ = plog.NewLogs
}

func TestConcurrencyLimit(t *testing.T) {
	c := &memConsumer{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	r := startReceiver(t, Config{MaxConcurrentRequests: 1}, c)
	client := newHTTPClient(t)
	url := "http://" + r.HTTPAddr() + "/v1/traces"
	conn := dialGRPC(t, r)
	grpcClient := ptraceotlp.NewGRPCClient(conn)
	body := mustProto(realisticTraces(1))
	ctx := context.Background()

	// One request holds the only slot.
	first := make(chan int, 1)
	go func() {
		res := doPost(t, client, url, "application/x-protobuf", "", bytes.NewReader(body), int64(len(body)))
		first <- res.status
	}()
	<-c.entered

	res := doPost(t, client, url, "application/x-protobuf", "", bytes.NewReader(body), int64(len(body)))
	if res.status != 429 || res.header.Get("Retry-After") != "1" {
		t.Errorf("HTTP while full: %d Retry-After %q", res.status, res.header.Get("Retry-After"))
	}
	_, err := grpcClient.Export(ctx, ptraceotlp.NewExportRequestFromTraces(realisticTraces(1)))
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || retryInfo(st) == nil {
		t.Errorf("gRPC while full: %v", err)
	}

	c.mu.Lock()
	blk := c.block
	c.block, c.entered = nil, nil
	c.mu.Unlock()
	close(blk)
	if s := <-first; s != 200 {
		t.Errorf("first request: %d", s)
	}
	// The slot comes back (for gRPC when the stream's context ends, which
	// happens just after the response), so both transports serve again.
	waitFor(t, func() bool {
		_, err := grpcClient.Export(ctx, ptraceotlp.NewExportRequestFromTraces(realisticTraces(1)))
		return err == nil
	})
	waitFor(t, func() bool {
		return doPost(t, client, url, "application/x-protobuf", "", bytes.NewReader(body), int64(len(body))).status == 200
	})
	if len(r.slots) != 0 {
		waitFor(t, func() bool { return len(r.slots) == 0 })
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
