package servicegraph

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/trenchcoat/trenchcoat/internal/spanmetrics/spantest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

func fmtMap(m map[string]float64) string {
	s := "\n"
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s += fmt.Sprintf("  %s %v\n", k, m[k])
	}
	return s
}

func eq(t *testing.T, what string, got, want map[string]float64) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, fmtMap(got), fmtMap(want))
	}
}

const (
	user     = `{client="user", connection_type="virtual_node", server="tickets-api"}`
	apiSrv   = `{client="tickets-api", server="tickets-server"}`
	srvDB    = `{client="tickets-server", connection_type="database", server="tickets-database"}`
	srvQueue = `{client="tickets-server", connection_type="messaging_system", server="tickets-orders"}`
	apiPay   = `{client="tickets-api", connection_type="virtual_node", server="payments.example.com"}`
)

func TestTopology(t *testing.T) {
	base := time.Now().Add(-3 * time.Hour).Truncate(15 * time.Second).Add(time.Second)
	app := spantest.NewAppendable()
	reg := prometheus.NewRegistry()
	g, err := New(Config{Registerer: reg}, app)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 5
	if err := g.ConsumeTraces(context.Background(), spantest.Traces(spantest.Topology(base, n, 2))); err != nil {
		t.Fatal(err)
	}
	// The payments call has no server side: it waits, then on Shutdown
	// becomes an edge to a virtual node.
	if v := metricValue(t, reg, "trenchcoat_servicegraph_pending_edges", nil); v != n {
		t.Errorf("pending edges = %v, want %d", v, n)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	eq(t, MetricRequests, app.Last(MetricRequests), map[string]float64{user: n, apiSrv: n, srvDB: n, srvQueue: n, apiPay: n})
	eq(t, MetricFailed, app.Last(MetricFailed), map[string]float64{user: 1, apiSrv: 0, srvDB: 1, srvQueue: 0, apiPay: 0})
	eq(t, "server_seconds_count", app.Last(MetricServerSeconds+"_count"), map[string]float64{user: n, apiSrv: n, srvDB: 0, srvQueue: n, apiPay: 0})
	eq(t, "client_seconds_count", app.Last(MetricClientSeconds+"_count"), map[string]float64{user: 0, apiSrv: n, srvDB: n, srvQueue: n, apiPay: n})

	near := func(what string, got, want float64) {
		t.Helper()
		if got < want-1e-9 || got > want+1e-9 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	near("api->server client sum", app.Last(MetricClientSeconds + "_sum")[apiSrv], n*0.030)
	near("api->server server sum", app.Last(MetricServerSeconds + "_sum")[apiSrv], n*0.025)
	near("queue consumer sum", app.Last(MetricServerSeconds + "_sum")[srvQueue], n*0.010)
	near("db client sum", app.Last(MetricClientSeconds + "_sum")[srvDB], n*0.005)
	le := func(l string) string { return `{client="tickets-api", le="` + l + `", server="tickets-server"}` }
	b := app.Last(MetricClientSeconds + "_bucket")
	for l, want := range map[string]float64{"0.016": 0, "0.032": n, "+Inf": n} {
		if b[le(l)] != want {
			t.Errorf("api->server client bucket le=%s = %v, want %v", l, b[le(l)], want)
		}
	}

	// Written at span time, three hours ago.
	ss := app.Samples(MetricRequests + user)
	if len(ss) != 2 || ss[0].V != 0 || ss[1].V != n {
		t.Fatalf("user edge samples %v", ss)
	}
	if d := time.Since(time.UnixMilli(ss[1].T)); d < 3*time.Hour-time.Minute || d > 3*time.Hour+time.Minute {
		t.Errorf("written %s ago, want 3h", d)
	}

	if v := metricValue(t, reg, "trenchcoat_servicegraph_paired_edges_total", nil); v != 2*n {
		t.Errorf("paired = %v, want %d", v, 2*n)
	}
	if v := metricValue(t, reg, "trenchcoat_servicegraph_expired_edges_total", map[string]string{"side": "client"}); v != n {
		t.Errorf("expired client = %v, want %d", v, n)
	}
	for ct, want := range map[string]float64{"virtual_node": 2 * n, "database": n} {
		if v := metricValue(t, reg, "trenchcoat_servicegraph_virtual_edges_total", map[string]string{"connection_type": ct}); v != want {
			t.Errorf("virtual %s = %v, want %v", ct, v, want)
		}
	}
}

// split returns the spans for which keep is true.
func split(spans []sdktrace.ReadOnlySpan, keep func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

func TestEitherOrderOfArrival(t *testing.T) {
	base := time.Now().Add(-time.Hour)
	spans := spantest.Topology(base, 3, -1)
	isCallee := func(s sdktrace.ReadOnlySpan) bool {
		return s.SpanKind() == trace.SpanKindServer && s.Parent().IsValid() || s.SpanKind() == trace.SpanKindConsumer
	}
	for _, order := range []string{"server first", "client first"} {
		t.Run(order, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			app := spantest.NewAppendable()
			g, err := New(Config{Registerer: reg}, app)
			if err != nil {
				t.Fatal(err)
			}
			first := split(spans, isCallee)
			second := split(spans, func(s sdktrace.ReadOnlySpan) bool { return !isCallee(s) })
			if order == "client first" {
				first, second = second, first
			}
			for _, b := range [][]sdktrace.ReadOnlySpan{first, second} {
				if err := g.ConsumeTraces(context.Background(), spantest.Traces(b)); err != nil {
					t.Fatal(err)
				}
			}
			if v := metricValue(t, reg, "trenchcoat_servicegraph_paired_edges_total", nil); v != 6 {
				t.Errorf("paired = %v, want 6", v)
			}
			if err := g.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			eq(t, MetricRequests, app.Last(MetricRequests), map[string]float64{user: 3, apiSrv: 3, srvDB: 3, srvQueue: 3, apiPay: 3})
		})
	}
}

func TestExpiry(t *testing.T) {
	e := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c := &clock{t: e}
	reg := prometheus.NewRegistry()
	app := spantest.NewAppendable()
	g, err := New(Config{Registerer: reg, now: c.Now}, app)
	if err != nil {
		t.Fatal(err)
	}
	spans := spantest.Topology(e.Add(-time.Second), 1, -1)
	// Only tickets-api's calls, and tickets-server's server span whose caller is missing.
	calls := split(spans, func(s sdktrace.ReadOnlySpan) bool {
		return s.SpanKind() == trace.SpanKindClient && s.Name() != "SELECT tickets"
	})
	orphan := split(spans, func(s sdktrace.ReadOnlySpan) bool { return s.SpanKind() == trace.SpanKindConsumer })
	if len(calls) != 2 || len(orphan) != 1 {
		t.Fatalf("calls %d, orphan %d", len(calls), len(orphan))
	}
	consume := func(spans []sdktrace.ReadOnlySpan) {
		t.Helper()
		if err := g.ConsumeTraces(context.Background(), spantest.Traces(spans)); err != nil {
			t.Fatal(err)
		}
	}
	consume(calls)
	consume(orphan)
	pending := func() float64 { return metricValue(t, reg, "trenchcoat_servicegraph_pending_edges", nil) }
	c.Add(9 * time.Second)
	g.expireDue()
	if p := pending(); p != 3 {
		t.Fatalf("pending after 9s = %v, want 3", p)
	}
	c.Add(2 * time.Second) // past Wait on the wall clock
	g.expireDue()
	if p := pending(); p != 0 {
		t.Fatalf("pending after 11s = %v, want 0", p)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Both unanswered calls name their peer by server.address.
	eq(t, MetricRequests, app.Last(MetricRequests), map[string]float64{
		apiPay: 1,
		`{client="tickets-api", connection_type="virtual_node", server="tickets-server"}`: 1,
	})
	for side, want := range map[string]float64{"client": 2, "server": 1} {
		if v := metricValue(t, reg, "trenchcoat_servicegraph_expired_edges_total", map[string]string{"side": side}); v != want {
			t.Errorf("expired %s = %v, want %v", side, v, want)
		}
	}
}

func TestExpiryInSpanTime(t *testing.T) {
	// A backfill runs faster than the wall clock: once span time has moved
	// SpanTimeWait (10m) past an unpaired span, it expires without waiting
	// 10 s of wall-clock time.
	e := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c := &clock{t: e}
	reg := prometheus.NewRegistry()
	app := spantest.NewAppendable()
	g, err := New(Config{Registerer: reg, now: c.Now}, app)
	if err != nil {
		t.Fatal(err)
	}
	old := e.Add(-time.Hour)
	pay := split(spantest.Topology(old, 1, -1), func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "POST" })
	later := spantest.Spans("other", "tick", trace.SpanKindInternal, old.Add(599*time.Second))
	muchLater := spantest.Spans("other", "tick", trace.SpanKindInternal, old.Add(601*time.Second))
	for i, b := range [][]sdktrace.ReadOnlySpan{pay, later, muchLater} {
		if err := g.ConsumeTraces(context.Background(), spantest.Traces(b)); err != nil {
			t.Fatal(err)
		}
		want := 1.0
		if i == 2 {
			want = 0
		}
		if v := metricValue(t, reg, "trenchcoat_servicegraph_pending_edges", nil); v != want {
			t.Errorf("after batch %d: pending = %v, want %v", i, v, want)
		}
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	eq(t, MetricRequests, app.Last(MetricRequests), map[string]float64{apiPay: 1})
}

func TestMaxItems(t *testing.T) {
	reg := prometheus.NewRegistry()
	app := spantest.NewAppendable()
	g, err := New(Config{Registerer: reg, MaxItems: 2}, app)
	if err != nil {
		t.Fatal(err)
	}
	// Three requests: each holds a GET and a POST client span while they
	// wait; only two fit.
	spans := spantest.Topology(time.Now().Add(-time.Minute), 3, -1)
	calls := split(spans, func(s sdktrace.ReadOnlySpan) bool {
		return s.SpanKind() == trace.SpanKindClient && s.Name() != "SELECT tickets"
	})
	if err := g.ConsumeTraces(context.Background(), spantest.Traces(calls)); err != nil {
		t.Fatal(err)
	}
	if v := metricValue(t, reg, "trenchcoat_servicegraph_dropped_spans_total", map[string]string{"reason": "max_items"}); v != 4 {
		t.Errorf("dropped = %v, want 4", v)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDimensions(t *testing.T) {
	app := spantest.NewAppendable()
	g, err := New(Config{Dimensions: []string{"cloud.platform"}}, app)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.ConsumeTraces(context.Background(), spantest.Traces(spantest.Topology(time.Now().Add(-time.Minute), 2, -1))); err != nil {
		t.Fatal(err)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	eq(t, MetricRequests, app.Last(MetricRequests), map[string]float64{
		`{client="user", connection_type="virtual_node", server="tickets-api", server_cloud_platform="aws_lambda"}`:                                                   2,
		`{client="tickets-api", client_cloud_platform="aws_lambda", server="tickets-server", server_cloud_platform="aws_ecs"}`:                                        2,
		`{client="tickets-server", client_cloud_platform="aws_ecs", connection_type="database", server="tickets-database"}`:                                           2,
		`{client="tickets-server", client_cloud_platform="aws_ecs", connection_type="messaging_system", server="tickets-orders", server_cloud_platform="aws_lambda"}`: 2,
		`{client="tickets-api", client_cloud_platform="aws_lambda", connection_type="virtual_node", server="payments.example.com"}`:                                   2,
	})
}

func TestLifecycle(t *testing.T) {
	g, err := New(Config{}, spantest.NewAppendable())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := g.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	g2, err := New(Config{}, spantest.NewAppendable())
	if err != nil {
		t.Fatal(err)
	}
	if err := g2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := g2.ConsumeTraces(context.Background(), spantest.Traces(spantest.Topology(time.Now(), 1, -1))); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := g2.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := g2.Start(context.Background()); err == nil {
		t.Error("Start after Shutdown succeeded")
	}
}

func TestDatabaseName(t *testing.T) {
	f := func(want string, kv ...string) {
		t.Helper()
		m := pcommon.NewMap()
		for i := 0; i < len(kv); i += 2 {
			m.PutStr(kv[i], kv[i+1])
		}
		got, ok := databaseName(m)
		if want == "" {
			if ok {
				t.Errorf("databaseName(%v) = %q, want not a database", kv, got)
			}
			return
		}
		if !ok || got != want {
			t.Errorf("databaseName(%v) = %q, %v, want %q", kv, got, ok, want)
		}
	}
	f("", "server.address", "db.example.com")
	f("db.example.com", "db.system.name", "postgresql", "server.address", "db.example.com", "db.namespace", "tickets")
	f("tickets", "db.system.name", "postgresql", "db.namespace", "tickets")
	f("tickets", "db.system", "postgresql", "db.name", "tickets")
	f("postgresql", "db.system.name", "postgresql")
	f("mysql", "db.system", "mysql")
}
