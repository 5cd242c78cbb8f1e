package tsdb

import (
	"context"
	"errors"
	"math"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/grpc"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type sample struct {
	t int64
	f float64
	h bool // a native histogram
}

// readSeries returns every series matching ms with its samples.
func readSeries(t *testing.T, q storage.Queryable, ms ...*labels.Matcher) map[string][]sample {
	t.Helper()
	qr, err := q.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer qr.Close()
	out := map[string][]sample{}
	set := qr.Select(context.Background(), false, nil, ms...)
	for set.Next() {
		s := set.At()
		var samples []sample
		it := s.Iterator(nil)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			switch vt {
			case chunkenc.ValFloat:
				ts, f := it.At()
				samples = append(samples, sample{t: ts, f: f})
			case chunkenc.ValHistogram, chunkenc.ValFloatHistogram:
				ts, fh := it.AtFloatHistogram(nil)
				samples = append(samples, sample{t: ts, f: fh.Count, h: true})
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		out[s.Labels().String()] = samples
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func metricNames(t *testing.T, q storage.Queryable) []string {
	t.Helper()
	qr, err := q.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer qr.Close()
	names, _, err := qr.LabelValues(context.Background(), labels.MetricName, nil)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// otlpServer is an OTLP/gRPC metrics endpoint on loopback that writes
// into the store, standing in for the real receiver.
type otlpServer struct {
	pmetricotlp.UnimplementedGRPCServer
	s *Store
}

func (o *otlpServer) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	return pmetricotlp.NewExportResponse(), o.s.WriteMetrics(ctx, req.Metrics())
}

func startOTLP(t *testing.T, s *Store) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pmetricotlp.RegisterGRPCServer(srv, &otlpServer{s: s})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String()
}

// TestOTLPFromSDK sends metrics with the real OTel Go SDK exporter and
// checks the Prometheus names they come back under.
func TestOTLPFromSDK(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := openStore(t, Config{Registerer: reg})
	addr := startOTLP(t, s)
	ctx := context.Background()

	exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(addr), otlpmetricgrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", "tickets-server"),
		attribute.String("service.namespace", "tickets"),
		attribute.String("service.instance.id", "task-1"),
		attribute.String("cloud.availability_zone", "us-east-1a"),
	)
	reader := sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(reader),
		sdkmetric.WithResource(res),
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: "rpc.server.duration"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}},
		)),
	)
	m := mp.Meter("test")
	reqs, _ := m.Int64Counter("http.server.requests", sdkmetricUnit("1"))
	dur, _ := m.Float64Histogram("http.server.request.duration", sdkmetricUnit("s"))
	conns, _ := m.Int64UpDownCounter("db.client.connections.usage", sdkmetricUnit("{connection}"))
	rpc, _ := m.Float64Histogram("rpc.server.duration", sdkmetricUnit("s"))
	_, _ = m.Float64ObservableGauge("system.cpu.utilization", sdkmetricUnit("1"),
		sdkmetricCallback(0.25))

	attrs := sdkmetricAttrs(attribute.String("http.route", "/tickets"), attribute.Int("http.response.status_code", 200))
	for i := range 10 {
		reqs.Add(ctx, 1, attrs)
		dur.Record(ctx, 0.05*float64(i+1), attrs)
		rpc.Record(ctx, 0.01*float64(i+1))
	}
	conns.Add(ctx, 7)
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	names := metricNames(t, s.Queryable())
	for _, want := range []string{
		"http_server_requests_total",
		"http_server_request_duration_seconds_bucket",
		"http_server_request_duration_seconds_sum",
		"http_server_request_duration_seconds_count",
		"db_client_connections_usage",
		"rpc_server_duration_seconds",
		"system_cpu_utilization_ratio",
		"target_info",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("metric %q missing; have %v", want, names)
		}
	}

	got := readSeries(t, s.Queryable(), labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "http_server_requests_total"))
	want := `{__name__="http_server_requests_total", http_response_status_code="200", http_route="/tickets", instance="task-1", job="tickets/tickets-server"}`
	// ForceFlush and Shutdown each export once: two samples, same value.
	if ss, ok := got[want]; !ok || len(ss) == 0 || ss[len(ss)-1].f != 10 {
		t.Errorf("counter: got %v, want %s = 10", got, want)
	}
	got = readSeries(t, s.Queryable(), labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "target_info"))
	if len(got) != 1 {
		t.Fatalf("target_info: got %v", got)
	}
	for k := range got {
		if want := `cloud_availability_zone="us-east-1a"`; !contains(k, want) {
			t.Errorf("target_info %s lacks %s", k, want)
		}
	}
	got = readSeries(t, s.Queryable(), labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "rpc_server_duration_seconds"))
	for k, ss := range got {
		if len(ss) == 0 || !ss[len(ss)-1].h || ss[len(ss)-1].f != 10 {
			t.Errorf("exponential histogram %s: got %+v, want native histograms of count 10", k, ss)
		}
	}
	got = readSeries(t, s.Queryable(), labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "http_server_request_duration_seconds_bucket"),
		labels.MustNewMatcher(labels.MatchEqual, "le", "+Inf"))
	if len(got) != 1 {
		t.Errorf("histogram +Inf bucket: got %v", got)
	}

	if v := testutil.ToFloat64(s.metrics.appended); v < 10 {
		t.Errorf("samples appended metric = %v, want >= 10", v)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "trenchcoat_metric_store_series" && mf.GetMetric()[0].GetGauge().GetValue() > 5 {
			found = true
		}
	}
	if !found {
		t.Error("trenchcoat_metric_store_series not registered or too low")
	}
}

func contains(s, sub string) bool { return len(sub) == 0 || indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestKeepUTF8Names: the switch keeps OTLP names as sent, without suffixes.
func TestKeepUTF8Names(t *testing.T) {
	s := openStore(t, Config{KeepUTF8Names: true})
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "api")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("http.server.requests")
	m.SetUnit("1")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.Attributes().PutStr("http.route", "/x")
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	dp.SetIntValue(3)
	if err := s.WriteMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	got := readSeries(t, s.Queryable(), labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "http.server.requests"))
	if len(got) != 1 {
		t.Fatalf("got %v, names %v", got, metricNames(t, s.Queryable()))
	}
	for k := range got {
		if !contains(k, `"http.route"="/x"`) {
			t.Errorf("label name not kept: %s", k)
		}
	}
}

func sumMetrics(name string, temporality pmetric.AggregationTemporality, base time.Time, values ...int64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "orders")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(temporality)
	for i, v := range values {
		dp := sum.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("queue", "q1")
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Duration(i) * 10 * time.Second)))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Duration(i+1) * 10 * time.Second)))
		dp.SetIntValue(v)
	}
	return md
}

// TestDeltaToCumulative: delta sums arrive as running totals per series,
// across requests, and the caller's data is left as it was.
func TestDeltaToCumulative(t *testing.T) {
	s := openStore(t, Config{})
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	ctx := context.Background()
	first := sumMetrics("jobs.processed", pmetric.AggregationTemporalityDelta, base, 1, 2, 3)
	if err := s.WriteMetrics(ctx, first); err != nil {
		t.Fatal(err)
	}
	if got := first.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(1).IntValue(); got != 2 {
		t.Errorf("caller's delta point changed to %d", got)
	}
	second := sumMetrics("jobs.processed", pmetric.AggregationTemporalityDelta, base.Add(30*time.Second), 4)
	if err := s.WriteMetrics(ctx, second); err != nil {
		t.Fatal(err)
	}
	got := readSeries(t, s.Queryable(), labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "jobs_processed_total"))
	if len(got) != 1 {
		t.Fatalf("got %v; names %v", got, metricNames(t, s.Queryable()))
	}
	for _, ss := range got {
		var vals []float64
		for _, x := range ss {
			vals = append(vals, x.f)
		}
		if !slices.Equal(vals, []float64{1, 3, 6, 10}) {
			t.Errorf("cumulative values = %v, want [1 3 6 10]", vals)
		}
	}
}

// TestSummaryAndGauge covers the remaining OTLP point types.
func TestSummaryAndGauge(t *testing.T) {
	s := openStore(t, Config{})
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "payments")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	now := pcommon.NewTimestampFromTime(time.Now())
	sm := ms.AppendEmpty()
	sm.SetName("payment.latency")
	sm.SetUnit("ms")
	sdp := sm.SetEmptySummary().DataPoints().AppendEmpty()
	sdp.SetTimestamp(now)
	sdp.SetCount(4)
	sdp.SetSum(100)
	q := sdp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.99)
	q.SetValue(40)
	gm := ms.AppendEmpty()
	gm.SetName("queue.depth")
	gdp := gm.SetEmptyGauge().DataPoints().AppendEmpty()
	gdp.SetTimestamp(now)
	gdp.SetDoubleValue(12.5)
	if err := s.WriteMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	names := metricNames(t, s.Queryable())
	for _, want := range []string{"payment_latency_milliseconds", "payment_latency_milliseconds_sum", "payment_latency_milliseconds_count", "queue_depth"} {
		if !slices.Contains(names, want) {
			t.Errorf("missing %s in %v", want, names)
		}
	}
	md2 := s.Metadata("payment_latency_milliseconds", 0)
	if e := md2["payment_latency_milliseconds"]; len(e) != 1 || e[0].Type != "summary" {
		t.Errorf("metadata = %+v", md2)
	}
}

// TestOutOfOrderAndRefusals: samples behind live data are accepted within
// the window; samples beyond it are refused, counted and reported as a
// partial error while the rest of the batch is kept.
func TestOutOfOrderAndRefusals(t *testing.T) {
	s := openStore(t, Config{OutOfOrderWindow: 2 * time.Hour})
	ctx := context.Background()
	now := time.Now()
	live := sumMetrics("orders", pmetric.AggregationTemporalityCumulative, now.Add(-time.Minute), 100)
	if err := s.WriteMetrics(ctx, live); err != nil {
		t.Fatal(err)
	}
	backfill := sumMetrics("orders", pmetric.AggregationTemporalityCumulative, now.Add(-90*time.Minute), 10, 20, 30)
	if err := s.WriteMetrics(ctx, backfill); err != nil {
		t.Fatalf("backfill within the window: %v", err)
	}
	tooOld := sumMetrics("orders", pmetric.AggregationTemporalityCumulative, now.Add(-5*time.Hour), 1)
	// The same request also carries a fine point of another metric.
	fine := sumMetrics("refunds", pmetric.AggregationTemporalityCumulative, now.Add(-2*time.Minute), 5)
	fine.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).CopyTo(
		tooOld.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty())
	err := s.WriteMetrics(ctx, tooOld)
	var pe *store.PartialError
	if !errors.As(err, &pe) || pe.Rejected != 1 {
		t.Fatalf("too old: err = %v, want a PartialError rejecting 1", err)
	}
	got := readSeries(t, s.Queryable(), labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "orders_total"))
	for _, ss := range got {
		if len(ss) != 4 {
			t.Errorf("orders_total samples = %+v, want 4 (3 backfilled + 1 live)", ss)
		}
	}
	if got := readSeries(t, s.Queryable(), labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "refunds_total")); len(got) != 1 {
		t.Errorf("the good part of a partly refused batch was lost: %v", got)
	}
	if v := testutil.ToFloat64(s.metrics.refused.WithLabelValues(reasonTooOld)); v != 1 {
		t.Errorf("refused{too_old} = %v, want 1", v)
	}
}

// TestReopenReplaysWAL: committed samples survive a close and reopen.
func TestReopenReplaysWAL(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteMetrics(context.Background(), sumMetrics("orders", pmetric.AggregationTemporalityCumulative, time.Now().Add(-time.Minute), 7)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.WriteMetrics(context.Background(), sumMetrics("orders", pmetric.AggregationTemporalityCumulative, time.Now(), 8)); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("write after Close: %v, want ErrUnavailable", err)
	}
	s2 := openStore(t, Config{Dir: dir})
	if got := readSeries(t, s2.Queryable(), labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "orders_total")); len(got) != 1 {
		t.Errorf("after reopen: %v", got)
	}
}

// TestAppendableCounts: the generators' V1 appender is counted too.
func TestAppendableCounts(t *testing.T) {
	s := openStore(t, Config{})
	app := s.Appendable().Appender(context.Background())
	ls := labels.FromStrings(labels.MetricName, "traces_spanmetrics_calls_total", "service", "a")
	now := time.Now().UnixMilli()
	for i := range 5 {
		if _, err := app.Append(0, ls, now+int64(i)*1000, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(s.metrics.appended); v != 5 {
		t.Errorf("appended = %v, want 5", v)
	}
	if _, ok := s.Appendable().(storage.AppendableV2); !ok {
		t.Error("Appendable does not implement AppendableV2")
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Config{}); err == nil {
		t.Error("Open without Dir succeeded")
	}
	if _, err := Open(Config{Dir: t.TempDir(), Retention: -time.Hour}); err == nil {
		t.Error("negative retention accepted")
	}
}

// TestConcurrentWrites: writers (cumulative and delta) and readers at
// once; run with -race.
func TestConcurrentWrites(t *testing.T) {
	s := openStore(t, Config{})
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)
	done := make(chan error, 8)
	for w := range 4 {
		go func() {
			var err error
			for i := 0; i < 20 && err == nil; i++ {
				temp := pmetric.AggregationTemporalityCumulative
				if w%2 == 1 {
					temp = pmetric.AggregationTemporalityDelta
				}
				md := sumMetrics("worker."+strconv.Itoa(w), temp, base.Add(time.Duration(i)*time.Minute), int64(i))
				err = s.WriteMetrics(ctx, md)
			}
			done <- err
		}()
	}
	for range 2 {
		go func() {
			for range 20 {
				qr, err := s.Queryable().Querier(math.MinInt64, math.MaxInt64)
				if err != nil {
					done <- err
					return
				}
				_, _, _ = qr.LabelValues(ctx, labels.MetricName, nil)
				_ = qr.Close()
				_ = s.Metadata("", 0)
			}
			done <- nil
		}()
	}
	for range 6 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(metricNames(t, s.Queryable())); n != 4 {
		t.Errorf("metric names = %d, want 4", n)
	}
}
