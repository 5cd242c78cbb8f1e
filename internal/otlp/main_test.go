package otlp

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// memConsumer records what it is given and returns err (if set) instead.
type memConsumer struct {
	mu      sync.Mutex
	err     error
	traces  []ptrace.Traces
	logs    []plog.Logs
	metrics []pmetric.Metrics
	// block, when set, is waited on by every call (to hold requests in
	// flight).
	block chan struct{}
	// entered, when set, receives one value per call on entry.
	entered chan struct{}
}

func (c *memConsumer) wait(ctx context.Context) {
	c.mu.Lock()
	b, e := c.block, c.entered
	c.mu.Unlock()
	if e != nil {
		e <- struct{}{}
	}
	if b != nil {
		select {
		case <-b:
		case <-ctx.Done():
		}
	}
}

func (c *memConsumer) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	c.wait(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.traces = append(c.traces, td)
	return nil
}

func (c *memConsumer) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	c.wait(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.logs = append(c.logs, ld)
	return nil
}

func (c *memConsumer) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	c.wait(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.metrics = append(c.metrics, md)
	return nil
}

func (c *memConsumer) setErr(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// spans returns every span received so far, in order.
func (c *memConsumer) spans() []ptrace.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ptrace.Span
	for _, td := range c.traces {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j)
				for k := 0; k < ss.Spans().Len(); k++ {
					out = append(out, ss.Spans().At(k))
				}
			}
		}
	}
	return out
}

func (c *memConsumer) spanCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, td := range c.traces {
		n += td.SpanCount()
	}
	return n
}

func (c *memConsumer) logRecords() []plog.LogRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []plog.LogRecord
	for _, ld := range c.logs {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				sl := rl.ScopeLogs().At(j)
				for k := 0; k < sl.LogRecords().Len(); k++ {
					out = append(out, sl.LogRecords().At(k))
				}
			}
		}
	}
	return out
}

func (c *memConsumer) allMetrics() map[string]pmetric.Metric {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]pmetric.Metric{}
	for _, md := range c.metrics {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				sm := rm.ScopeMetrics().At(j)
				for k := 0; k < sm.Metrics().Len(); k++ {
					out[sm.Metrics().At(k).Name()] = sm.Metrics().At(k)
				}
			}
		}
	}
	return out
}

// startReceiver starts a receiver on loopback with free ports and stops
// it when the test ends.
func startReceiver(t testing.TB, cfg Config, c Consumer) *Receiver {
	t.Helper()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	r, err := New(cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return r
}

// newHTTPClient returns a client whose idle connections are closed at
// the end of the test (goleak).
func newHTTPClient(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if m.GetCounter() != nil {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
