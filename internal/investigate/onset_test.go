package investigate

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

func TestOnsetIndex(t *testing.T) {
	flat := func(n int, e, tot float64) ([]float64, []float64) {
		errs, tots := make([]float64, n), make([]float64, n)
		for i := range errs {
			errs[i], tots[i] = e, tot
		}
		return errs, tots
	}
	t.Run("rise inside the window", func(t *testing.T) {
		errs, tot := flat(100, 0, 100)
		for i := 70; i < 100; i++ {
			errs[i] = 30
		}
		if got := onsetIndex(errs, tot, 60); got != 70 {
			t.Errorf("onset %d, want 70", got)
		}
	})
	t.Run("window starts inside the incident", func(t *testing.T) {
		errs, tot := flat(100, 1, 100)
		for i := 40; i < 100; i++ {
			errs[i] = 20 + float64(i%3)
		}
		errs[55] = 2 // one quiet bucket does not end the incident
		if got := onsetIndex(errs, tot, 80); got != 40 {
			t.Errorf("onset %d, want 40", got)
		}
	})
	t.Run("no rise", func(t *testing.T) {
		errs, tot := flat(100, 1, 100)
		errs[90] = 2
		if got := onsetIndex(errs, tot, 80); got != -1 {
			t.Errorf("onset %d on steady errors, want -1", got)
		}
	})
	t.Run("no data", func(t *testing.T) {
		errs, tot := flat(10, 0, 0)
		if got := onsetIndex(errs, tot, 5); got != -1 {
			t.Errorf("onset %d without spans, want -1", got)
		}
		if got := onsetIndex(errs, tot, 20); got != -1 {
			t.Errorf("onset %d with the window past the data, want -1", got)
		}
	})
}

// TestWindowInsideIncident: asked about a window that starts ten minutes
// after the onset, the detective compares with the time before the onset,
// not with the same-length window before (which is the incident too).
func TestWindowInsideIncident(t *testing.T) {
	d, start, end := exhaustionWorld(t, true)
	onset := start.Add(5 * time.Minute)
	from := onset.Add(10 * time.Minute)
	rep, err := d.Investigate(context.Background(), Request{Service: "booking", Start: from, End: end})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Onset == nil || rep.Onset.Sub(onset).Abs() > 2*time.Minute {
		t.Fatalf("onset %v, want about %v\n%s", rep.Onset, onset, dump(rep))
	}
	if rep.BaselineEnd.After(onset) {
		t.Errorf("baseline ends %v, after the onset %v", rep.BaselineEnd, onset)
	}
	if rep.Cause != "connection exhaustion" || rep.Resource != "orders-db-7c41e2" {
		t.Errorf("cause %q of %q\n%s", rep.Cause, rep.Resource, dump(rep))
	}
	// Against the default baseline (all incident) the error messages and
	// the log patterns would not be new; against the moved one they are.
	for _, c := range []string{CheckMessages, CheckLogs, CheckMetrics, CheckDurations} {
		if len(findingsOf(rep, c)) == 0 {
			t.Errorf("no %s finding\n%s", c, dump(rep))
		}
	}
}

// TestTimeoutDeepest: the 30 s pool timeout also ends the request spans
// above it; only the span that gave up is cited, with its callers.
func TestTimeoutDeepest(t *testing.T) {
	d, start, end := exhaustionWorld(t, true)
	rep, err := d.Investigate(context.Background(), Request{Service: "booking", Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	var timeouts []Finding
	for _, f := range findingsOf(rep, CheckDurations) {
		if f.Facts["kind"] == "timeout" {
			timeouts = append(timeouts, f)
		}
	}
	if len(timeouts) != 1 || timeouts[0].Facts["operation"] != "pg-pool.connect" || timeouts[0].Facts["duration"] != "30s" {
		t.Fatalf("timeouts %+v\n%s", timeouts, dump(rep))
	}
	if c := timeouts[0].Facts["callers"]; !strings.Contains(c, "POST /:endpoint") {
		t.Errorf("callers %q lack the request span", c)
	}
}

// countingReader counts AggregateSpans calls.
type countingReader struct {
	store.TraceReader
	n int
}

func (c *countingReader) AggregateSpans(ctx context.Context, a store.Aggregate) ([]store.GroupSeries, error) {
	c.n++
	return c.TraceReader.AggregateSpans(ctx, a)
}

// TestAttributeQueries: the attribute comparison costs one aggregation per
// attribute key, not two.
func TestAttributeQueries(t *testing.T) {
	start, end := times()
	w := newWorld()
	w.paymentsDeploy(start.Add(-30*time.Minute), end, true, start.Add(10*time.Minute))
	st, _ := w.open(t)
	cr := &countingReader{TraceReader: st}
	v := &inv{d: New(Config{Traces: cr}), start: start, end: end, service: "payments"}
	v.errWin, v.totWin, _ = v.rates(context.Background(), start, end, condService("payments"))
	cr.n = 0
	if err := v.checkAttributes(context.Background()); err != nil {
		t.Fatal(err)
	}
	var keys int
	for _, scope := range []store.Scope{store.ScopeResource, store.ScopeSpan} {
		ks, _ := st.SpanAttributeKeys(context.Background(), scope, start, end)
		for _, k := range ks {
			if !skipAttr(k.Key) {
				keys++
			}
		}
	}
	if cr.n > keys {
		t.Errorf("%d aggregations for %d keys", cr.n, keys)
	}
	var zone bool
	for _, f := range v.findings {
		zone = zone || f.Facts["value"] == "eu-west-1c" && f.Facts["cardinality"] == "3"
	}
	if !zone {
		t.Errorf("zone not found with its cardinality: %+v", v.findings)
	}
}

// TestMetricAlignment: of series of the implicated database, the one that
// rose with the errors is reported and cited; one that rose long before
// the onset and stayed there, a histogram bucket, and a series that fell
// while errors rose are not; span-generated series rank below it.
func TestMetricAlignment(t *testing.T) {
	start, end := times()
	bstart := start.Add(-30 * time.Minute)
	onset := start.Add(5 * time.Minute)
	w := newWorld()
	w.bookingService(bstart, onset, 3, false, onset)
	w.bookingService(onset, end, 6, true, onset)
	st, lst := w.open(t)
	fm := dbMetrics(bstart, end, true, onset)
	id := "orders-db-7c41e2"
	early := Series{Labels: map[string]string{"__name__": "aws_rds_disk_queue_depth_average", "dimension_DBInstanceIdentifier": id}}
	bucket := Series{Labels: map[string]string{"__name__": "traces_service_graph_request_client_seconds_bucket", "server": dbHost, "le": "0.002"}}
	derived := Series{Labels: map[string]string{"__name__": "traces_service_graph_request_failed_total", "server": dbHost}}
	i := 0
	for t := bstart; !t.After(end); t = t.Add(time.Minute) {
		e := 1.0
		if t.After(bstart.Add(3 * time.Minute)) {
			e = 9 + float64(i%2) // changed 32 minutes before the onset
		}
		early.Points = append(early.Points, Point{t, e})
		b, dv := 1.0, float64(i%2)
		if !t.Before(onset) {
			b, dv = 50, 200
		}
		bucket.Points = append(bucket.Points, Point{t, b})
		derived.Points = append(derived.Points, Point{t, dv})
		i++
	}
	fm.series = append(fm.series, early, bucket, derived)
	rep, err := New(Config{Traces: st, Logs: lst, Metrics: fm}).Investigate(context.Background(), Request{Service: "booking", Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	ms := findingsOf(rep, CheckMetrics)
	if len(ms) == 0 || ms[0].Facts["metric"] != "aws_rds_database_connections_sum" || ms[0].Facts["aligned"] != "true" {
		t.Fatalf("metric findings:\n%s", dump(rep))
	}
	for _, f := range ms {
		switch f.Facts["metric"] {
		case "aws_rds_disk_queue_depth_average", "traces_service_graph_request_client_seconds_bucket":
			t.Errorf("reported %s", f.Title)
		}
	}
	if !strings.Contains(rep.Diagnosis, "aws_rds_database_connections_sum") {
		t.Errorf("diagnosis does not cite the connections:\n%s", rep.Diagnosis)
	}
}

func TestPearsonChangePoint(t *testing.T) {
	if c := pearson([]float64{1, 2, 3, 4, 5}, []float64{2, 4, 6, 8, 10}); math.Abs(c-1) > 1e-9 {
		t.Errorf("pearson %v, want 1", c)
	}
	if c := pearson([]float64{1, 2, 3, 4, 5}, []float64{5, 4, 3, 2, 1}); math.Abs(c+1) > 1e-9 {
		t.Errorf("pearson %v, want -1", c)
	}
	if c := pearson([]float64{1, 1, 1, 1, 1}, []float64{5, 4, 3, 2, 1}); !math.IsNaN(c) {
		t.Errorf("pearson of a constant %v, want NaN", c)
	}
	if k := changePoint([]float64{1, 1, 2, 1, 1, 9, 10, 9, 9}); k != 5 {
		t.Errorf("change point %d, want 5", k)
	}
	if k := changePoint([]float64{1, 2}); k != -1 {
		t.Errorf("change point of 2 points %d, want -1", k)
	}
}

// TestServerSpanIsNotADependency: a handler that fails on its own is not
// blamed on the address of the server span above it (its own endpoint),
// nor on what its caller called (itself).
func TestServerSpanIsNotADependency(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	// The caller's client span, in another service, names this service's
	// load balancer.
	crs := td.ResourceSpans().AppendEmpty()
	crs.Resource().Attributes().PutStr("service.name", "caller")
	cl := crs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	cl.SetTraceID(pcommon.TraceID{1})
	cl.SetSpanID(pcommon.SpanID{9})
	cl.SetKind(ptrace.SpanKindClient)
	cl.SetName("POST")
	cl.Attributes().PutStr("server.address", "internal-svc-alb-123.us-east-1.elb.amazonaws.com")
	srv := ss.AppendEmpty()
	srv.SetTraceID(pcommon.TraceID{1})
	srv.SetSpanID(pcommon.SpanID{1})
	srv.SetParentSpanID(pcommon.SpanID{9})
	srv.SetKind(ptrace.SpanKindServer)
	srv.SetName("POST /book")
	srv.Attributes().PutStr("server.address", "internal-svc-alb-123.us-east-1.elb.amazonaws.com")
	h := ss.AppendEmpty()
	h.SetTraceID(pcommon.TraceID{1})
	h.SetSpanID(pcommon.SpanID{2})
	h.SetParentSpanID(pcommon.SpanID{1})
	h.SetName("handler")
	h.Status().SetCode(ptrace.StatusCodeError)
	h.Status().SetMessage("TypeError: x is undefined")
	rcs := rootCauses(td)
	if len(rcs) != 1 || rcs[0].name != "handler" || rcs[0].dep != "" {
		t.Errorf("root causes %+v", rcs)
	}
}

// TestSlowdown: requests get eight times slower after a deploy, with no
// errors: the diagnosis is a slowdown, not failing requests.
func TestSlowdown(t *testing.T) {
	start, end := times()
	onset := start.Add(8 * time.Minute)
	w := newWorld()
	w.noise = 0
	for ts := start.Add(-30 * time.Minute); ts.Before(end); ts = ts.Add(2 * time.Second) {
		ver, dur := "4.1.0", time.Duration(40+w.rng.IntN(20))*time.Millisecond
		if !ts.Before(onset) {
			ver, dur = "4.2.0", time.Duration(400+w.rng.IntN(100))*time.Millisecond
		}
		tr, root := w.id(), w.id()
		w.spans = append(w.spans, sp{trace: tr, id: root, service: "search", res: map[string]string{"service.version": ver}, name: "GET /search", start: ts, dur: dur})
		w.spans = append(w.spans, sp{trace: tr, id: w.id(), parent: root, service: "search", res: map[string]string{"service.version": ver}, name: "rank", start: ts.Add(time.Millisecond), dur: dur - 2*time.Millisecond})
	}
	st, lst := w.open(t)
	rep, err := New(Config{Traces: st, Logs: lst}).Investigate(context.Background(), Request{Service: "search", Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cause != "slowdown" || rep.Resource != "search" {
		t.Errorf("cause %q of %q, want slowdown of search\n%s", rep.Cause, rep.Resource, dump(rep))
	}
	for _, want := range []string{"slowed down", "p90", "4.2.0"} {
		if !strings.Contains(rep.Diagnosis, want) {
			t.Errorf("diagnosis lacks %q: %s", want, rep.Diagnosis)
		}
	}
	if strings.Contains(rep.Diagnosis, "fail") {
		t.Errorf("diagnosis speaks of failures: %s", rep.Diagnosis)
	}
}
