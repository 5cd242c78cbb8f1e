package spanmetrics

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/trenchcoat/trenchcoat/internal/spanmetrics/spantest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const iv = 15 * time.Second

// clock is a settable wall clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func ms(t time.Time) int64 { return t.UnixMilli() }

func ceilIv(t time.Time) int64 {
	m := t.UnixMilli()
	q := m / iv.Milliseconds()
	if m%iv.Milliseconds() != 0 {
		q++
	}
	return q * iv.Milliseconds()
}

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

func TestTopology(t *testing.T) {
	// Backfilled history: spans from three hours ago must produce samples
	// three hours ago, not now.
	base := time.Now().Add(-3 * time.Hour).Truncate(iv).Add(time.Second)
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
	td := spantest.Traces(spantest.Topology(base, n, 2))
	if err := g.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	api := `cloud_platform="aws_lambda", cloud_region="us-east-1", deployment_environment_name="demo", faas_name="tickets-api"`
	srv := `aws_ecs_task_family="tickets-server", cloud_availability_zone="us-east-1a", cloud_platform="aws_ecs", cloud_region="us-east-1", deployment_environment_name="demo"`
	orders := `cloud_platform="aws_lambda", cloud_region="us-east-1", deployment_environment_name="demo", faas_name="tickets-orders"`
	want := map[string]float64{
		`{` + api + `, http_route="/tickets", service="tickets-api", span_kind="SPAN_KIND_SERVER", span_name="GET /tickets", status_code="STATUS_CODE_UNSET"}`:    n - 1,
		`{` + api + `, http_route="/tickets", service="tickets-api", span_kind="SPAN_KIND_SERVER", span_name="GET /tickets", status_code="STATUS_CODE_ERROR"}`:    1,
		`{` + api + `, service="tickets-api", span_kind="SPAN_KIND_CLIENT", span_name="GET", status_code="STATUS_CODE_UNSET"}`:                                    n,
		`{` + api + `, service="tickets-api", span_kind="SPAN_KIND_CLIENT", span_name="POST", status_code="STATUS_CODE_UNSET"}`:                                   n,
		`{` + srv + `, http_route="/tickets", service="tickets-server", span_kind="SPAN_KIND_SERVER", span_name="GET /tickets", status_code="STATUS_CODE_UNSET"}`: n,
		`{` + srv + `, service="tickets-server", span_kind="SPAN_KIND_CLIENT", span_name="SELECT tickets", status_code="STATUS_CODE_UNSET"}`:                      n - 1,
		`{` + srv + `, service="tickets-server", span_kind="SPAN_KIND_CLIENT", span_name="SELECT tickets", status_code="STATUS_CODE_ERROR"}`:                      1,
		`{` + srv + `, service="tickets-server", span_kind="SPAN_KIND_PRODUCER", span_name="orders publish", status_code="STATUS_CODE_UNSET"}`:                    n,
		`{` + orders + `, service="tickets-orders", span_kind="SPAN_KIND_CONSUMER", span_name="orders process", status_code="STATUS_CODE_UNSET"}`:                 n,
	}
	got := app.Last(MetricCalls)
	if !maps.Equal(got, want) {
		t.Errorf("calls:\n got %v\nwant %v", fmtMap(got), fmtMap(want))
	}
	if got := app.Last(MetricLatency + "_count"); !maps.Equal(got, want) {
		t.Errorf("latency_count:\n got %v\nwant %v", fmtMap(got), fmtMap(want))
	}

	// Each series: a zero one interval before, then the count at the end of
	// the interval its spans ended in (span time).
	end := ceilIv(base.Add(time.Second))
	for k, v := range want {
		ss := app.Samples(MetricCalls + k)
		wantS := []spantest.Sample{{T: end - iv.Milliseconds(), V: 0}, {T: end, V: v}}
		if !slices.Equal(ss, wantS) {
			t.Errorf("%s: samples %v, want %v", k, ss, wantS)
		}
	}
	if d := time.Since(time.UnixMilli(end)); d < 3*time.Hour-time.Minute || d > 3*time.Hour+time.Minute {
		t.Errorf("samples written %s ago, want 3h ago", d)
	}

	// Histogram of the 5 ms SELECT: everything from le=0.008 up.
	sel := `{` + srv + `, le="%s", service="tickets-server", span_kind="SPAN_KIND_CLIENT", span_name="SELECT tickets", status_code="STATUS_CODE_UNSET"}`
	buckets := app.Last(MetricLatency + "_bucket")
	for le, v := range map[string]float64{"0.002": 0, "0.004": 0, "0.008": n - 1, "0.016": n - 1, "16.384": n - 1, "30": n - 1, "60": n - 1, "+Inf": n - 1} {
		if got := buckets[fmt.Sprintf(sel, le)]; got != v {
			t.Errorf("SELECT bucket le=%s = %v, want %v", le, got, v)
		}
	}
	if nb := len(buckets); nb != len(want)*17 {
		t.Errorf("%d bucket series, want %d", nb, len(want)*17)
	}
	sum := app.Last(MetricLatency + "_sum")[`{`+srv+`, service="tickets-server", span_kind="SPAN_KIND_CLIENT", span_name="SELECT tickets", status_code="STATUS_CODE_UNSET"}`]
	if sum < 0.0199 || sum > 0.0201 {
		t.Errorf("SELECT latency_sum = %v, want 0.02", sum)
	}
	if v := metricValue(t, reg, "trenchcoat_spanmetrics_spans_total", nil); v != 7*n {
		t.Errorf("spans_total = %v, want %v", v, 7*n)
	}
	if v := metricValue(t, reg, "trenchcoat_spanmetrics_active_series", nil); v != float64(len(want)) {
		t.Errorf("active_series = %v, want %d", v, len(want))
	}
}

func fmtMap(m map[string]float64) string {
	s := "\n"
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s += fmt.Sprintf("  %s %v\n", k, m[k])
	}
	return s
}

// newClocked returns a generator on a fake clock, not started: the test
// drives emission with advance.
func newClocked(t *testing.T, c *clock, cfg Config) (*Generator, *spantest.Appendable) {
	t.Helper()
	app := spantest.NewAppendable()
	cfg.now = c.Now
	g, err := New(cfg, app)
	if err != nil {
		t.Fatal(err)
	}
	return g, app
}

func advance(t *testing.T, g *Generator) {
	t.Helper()
	if err := g.reg.Advance(context.Background(), math.MaxInt64); err != nil {
		t.Fatal(err)
	}
}

func consume(t *testing.T, g *Generator, ends ...time.Time) {
	t.Helper()
	if err := g.ConsumeTraces(context.Background(), spantest.Traces(spantest.Spans("svc", "op", trace.SpanKindServer, ends...))); err != nil {
		t.Fatal(err)
	}
}

const opSeries = `traces_spanmetrics_calls_total{service="svc", span_kind="SPAN_KIND_SERVER", span_name="op", status_code="STATUS_CODE_UNSET"}`

func TestOutOfOrder(t *testing.T) {
	e := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) // aligned to 15s
	at := func(s int) time.Time { return e.Add(time.Duration(s) * time.Second) }
	c := &clock{t: at(1000)}
	reg := prometheus.NewRegistry()
	g, app := newClocked(t, c, Config{Registerer: reg, Dimensions: []string{}})

	consume(t, g, at(120), at(100)) // out of order, nothing written yet: both in their own interval
	consume(t, g, at(130))          // watermark 120: writes 105 and 120
	advance(t, g)
	consume(t, g, at(110), at(125)) // 110 is late (120 written): counted at 135
	advance(t, g)                   // watermark still 120
	consume(t, g, at(-481))         // more than MaxLateness (10m) behind: dropped
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := func(sec int, v float64) spantest.Sample { return spantest.Sample{T: ms(at(sec)), V: v} }
	want := []spantest.Sample{s(90, 0), s(105, 1), s(120, 2), s(135, 5)}
	if got := app.Samples(opSeries); !slices.Equal(got, want) {
		t.Errorf("samples %v, want %v", got, want)
	}
	if v := metricValue(t, reg, "trenchcoat_spanmetrics_late_spans_total", nil); v != 1 {
		t.Errorf("late_spans_total = %v, want 1", v)
	}
	if v := metricValue(t, reg, "trenchcoat_spanmetrics_dropped_spans_total", map[string]string{"reason": "too_late"}); v != 1 {
		t.Errorf("dropped too_late = %v, want 1", v)
	}
}

// A quiet service's spans arriving after a busy service's later spans
// (each exporter batches on its own) are not late: every series keeps its
// own clock.
func TestTrailingExporter(t *testing.T) {
	e := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return e.Add(time.Duration(s) * time.Second) }
	c := &clock{t: at(1000)}
	reg := prometheus.NewRegistry()
	g, app := newClocked(t, c, Config{Registerer: reg, Dimensions: []string{}})
	td := func(svc string, ends ...time.Time) ptrace.Traces {
		return spantest.Traces(spantest.Spans(svc, "op", trace.SpanKindServer, ends...))
	}
	for _, b := range []ptrace.Traces{td("busy", at(100), at(200), at(400)), td("quiet", at(100), at(110))} {
		if err := g.ConsumeTraces(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		advance(t, g)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	quiet := app.Samples(`traces_spanmetrics_calls_total{service="quiet", span_kind="SPAN_KIND_SERVER", span_name="op", status_code="STATUS_CODE_UNSET"}`)
	want := []spantest.Sample{{T: ms(at(90)), V: 0}, {T: ms(at(105)), V: 1}, {T: ms(at(120)), V: 2}}
	if !slices.Equal(quiet, want) {
		t.Errorf("quiet service samples %v, want %v", quiet, want)
	}
	if v := metricValue(t, reg, "trenchcoat_spanmetrics_late_spans_total", nil); v != 0 {
		t.Errorf("late_spans_total = %v, want 0", v)
	}
}

func TestWallClockKeepsSeriesFlowing(t *testing.T) {
	e := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c := &clock{t: e.Add(2 * time.Second)}
	g, app := newClocked(t, c, Config{Dimensions: []string{}, StaleAfter: time.Minute})
	consume(t, g, e.Add(time.Second)) // live span, interval ending at e+15s
	// No more traffic; the wall clock moves on and samples keep coming.
	for range 4 {
		c.Add(iv)
		advance(t, g)
	}
	got := app.Samples(opSeries)
	want := []spantest.Sample{{T: ms(e), V: 0}}
	for i := 1; i <= 3; i++ {
		want = append(want, spantest.Sample{T: ms(e.Add(time.Duration(i) * iv)), V: 1})
	}
	if !slices.Equal(got, want) {
		t.Errorf("samples %v, want %v", got, want)
	}
	// Idle past StaleAfter: the series is no longer written and forgotten.
	for range 10 {
		c.Add(iv)
		advance(t, g)
	}
	last := app.Samples(opSeries)
	if l := last[len(last)-1].T; l > ms(e.Add(time.Second+time.Minute+iv)) {
		t.Errorf("stale series still written at %v", time.UnixMilli(l).Sub(e))
	}
	if n := g.reg.Len(); n != 0 {
		t.Errorf("%d series held after going stale, want 0", n)
	}
	// It comes back: starts again from zero (a counter reset to PromQL).
	c.Add(time.Second)
	consume(t, g, c.Now())
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	again := app.Samples(opSeries)[len(last):]
	if len(again) != 2 || again[0].V != 0 || again[1].V != 1 || again[0].T <= last[len(last)-1].T {
		t.Errorf("after coming back: %v (before: %v)", again, last)
	}
}

func TestMaxSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	app := spantest.NewAppendable()
	g, err := New(Config{MaxSeries: 2, Dimensions: []string{}, Registerer: reg}, app)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(-time.Minute)
	for _, name := range []string{"a", "b", "c", "d", "a"} {
		td := spantest.Traces(spantest.Spans("svc", name, trace.SpanKindServer, end, end))
		if err := g.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := app.Last(MetricCalls)
	want := map[string]float64{
		`{service="svc", span_kind="SPAN_KIND_SERVER", span_name="a", status_code="STATUS_CODE_UNSET"}`: 4,
		`{service="svc", span_kind="SPAN_KIND_SERVER", span_name="b", status_code="STATUS_CODE_UNSET"}`: 2,
	}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", fmtMap(got), fmtMap(want))
	}
	if v := metricValue(t, reg, "trenchcoat_spanmetrics_dropped_spans_total", map[string]string{"reason": "max_series"}); v != 4 {
		t.Errorf("dropped max_series = %v, want 4", v)
	}
}

func TestTooOldAndFuture(t *testing.T) {
	reg := prometheus.NewRegistry()
	app := spantest.NewAppendable()
	g, err := New(Config{Dimensions: []string{}, Registerer: reg}, app)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	td := spantest.Traces(spantest.Spans("svc", "op", trace.SpanKindServer, now.Add(-8*24*time.Hour), now.Add(time.Hour)))
	if err := g.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ss := app.Samples(opSeries)
	if len(ss) != 2 || ss[1].V != 1 || ss[1].T > time.Now().UnixMilli() {
		t.Errorf("samples %v: want the future span counted, stamped no later than now", ss)
	}
	if v := metricValue(t, reg, "trenchcoat_spanmetrics_dropped_spans_total", map[string]string{"reason": "too_old"}); v != 1 {
		t.Errorf("dropped too_old = %v, want 1", v)
	}
}

func TestConcurrentConsume(t *testing.T) {
	app := spantest.NewAppendable()
	g, err := New(Config{Interval: time.Second, Lag: time.Millisecond}, app)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour)
	var wg sync.WaitGroup
	const workers, batches = 4, 20
	for w := range workers {
		td := spantest.Traces(spantest.Topology(base.Add(time.Duration(w)*time.Minute), 10, -1))
		wg.Go(func() {
			for range batches {
				if err := g.ConsumeTraces(context.Background(), td); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, v := range app.Last(MetricCalls) {
		total += v
	}
	if want := float64(workers * batches * 10 * 7); total != want {
		t.Errorf("total calls %v, want %v", total, want)
	}
}

func TestLifecycle(t *testing.T) {
	app := spantest.NewAppendable()
	g, err := New(Config{}, app)
	if err != nil {
		t.Fatal(err)
	}
	// Shutdown without Start, twice.
	for range 2 {
		if err := g.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Start(context.Background()); err == nil {
		t.Error("Start after Shutdown succeeded")
	}
	g2, err := New(Config{}, app)
	if err != nil {
		t.Fatal(err)
	}
	if err := g2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := g2.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	for range 2 {
		if err := g2.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	f := func(cfg Config) {
		t.Helper()
		if _, err := New(cfg, spantest.NewAppendable()); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	f(Config{Dimensions: []string{"service"}})
	f(Config{Dimensions: []string{"a.b", "a_b"}})
	f(Config{Buckets: []float64{1, 0.5}})
	f(Config{Interval: time.Microsecond})
	if _, err := New(Config{}, nil); err == nil {
		t.Error("nil storage accepted")
	}
	// Self-metrics registered twice on one registry: refused, not a panic.
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Registerer: reg}, spantest.NewAppendable()); err != nil {
		t.Fatal(err)
	}
	f(Config{Registerer: reg})
}

func TestSanitizeLabelName(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := SanitizeLabelName(in); got != want {
			t.Errorf("SanitizeLabelName(%q) = %q, want %q", in, got, want)
		}
	}
	f("cloud.region", "cloud_region")
	f("http.route", "http_route")
	f("aws.ecs.task.family", "aws_ecs_task_family")
	f("k8s-pod/name", "k8s_pod_name")
	f("3d", "_3d")
	f("", "_")
	f("ünï", "__n__")
}

func TestKindAndStatusStrings(t *testing.T) {
	f := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	f(KindString(ptrace.SpanKindServer), "SPAN_KIND_SERVER")
	f(KindString(ptrace.SpanKindConsumer), "SPAN_KIND_CONSUMER")
	f(KindString(ptrace.SpanKind(42)), "SPAN_KIND_UNSPECIFIED")
	f(StatusString(ptrace.StatusCodeError), "STATUS_CODE_ERROR")
	f(StatusString(ptrace.StatusCodeOk), "STATUS_CODE_OK")
	f(StatusString(ptrace.StatusCodeUnset), "STATUS_CODE_UNSET")
}
