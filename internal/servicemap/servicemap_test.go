package servicemap_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trenchcoat/trenchcoat/internal/servicemap"
	"github.com/trenchcoat/trenchcoat/internal/servicemap/servicemaptest"
	"github.com/trenchcoat/trenchcoat/internal/spanmetrics/series"
	"github.com/trenchcoat/trenchcoat/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wantQ is histogram_quantile by hand for spans all lasting d, with the
// given bucket upper bounds (seconds): linear within d's bucket.
func wantQ(q float64, d time.Duration, bounds []float64) float64 {
	lo := 0.0
	for _, ub := range bounds {
		if d.Seconds() <= ub {
			return lo + (ub-lo)*q
		}
		lo = ub
	}
	return lo
}

func spanBounds() []float64 {
	var b []float64
	for _, ns := range store.DurationBuckets {
		b = append(b, float64(ns)/1e9)
	}
	return b
}

func near(t *testing.T, what string, got servicemap.Num, want float64) {
	t.Helper()
	g := float64(got)
	if math.IsNaN(want) {
		if !math.IsNaN(g) {
			t.Errorf("%s = %v, want NaN", what, g)
		}
		return
	}
	if math.Abs(g-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, g, want)
	}
}

// checkFigures compares f with n calls of which e failed, all lasting d.
func checkFigures(t *testing.T, what string, f servicemap.Figures, rng servicemap.Range, n, e int, d time.Duration, bounds []float64) {
	t.Helper()
	near(t, what+" calls", f.Calls, float64(n))
	near(t, what+" errors", f.Errors, float64(e))
	near(t, what+" rate", f.Rate, float64(n)/rng.End.Sub(rng.Start).Seconds())
	near(t, what+" errorRatio", f.ErrorRatio, float64(e)/float64(n))
	near(t, what+" p50", f.P50, wantQ(0.5, d, bounds))
	near(t, what+" p95", f.P95, wantQ(0.95, d, bounds))
	near(t, what+" p99", f.P99, wantQ(0.99, d, bounds))
}

const n, e = servicemaptest.Requests, 1

func TestServices(t *testing.T) {
	fx := servicemaptest.New(t)
	got, err := fx.Map.Services(context.Background(), fx.Range)
	if err != nil {
		t.Fatal(err)
	}
	b := series.DefaultBuckets()
	// Erroring first, then by rate, then by name.
	wantOrder := []string{"tickets-api", "tickets-orders", "tickets-server", servicemaptest.Weird}
	if len(got) != len(wantOrder) {
		t.Fatalf("%d services, want %d: %+v", len(got), len(wantOrder), got)
	}
	for i, s := range got {
		if s.Name != wantOrder[i] {
			t.Errorf("service %d = %q, want %q", i, s.Name, wantOrder[i])
		}
	}
	by := map[string]servicemap.Service{}
	for _, s := range got {
		by[s.Name] = s
	}
	// Requests are SERVER/CONSUMER spans only: tickets-api's CLIENT calls
	// and tickets-server's failing database CLIENT call are not its requests.
	checkFigures(t, "tickets-api", by["tickets-api"].Figures, fx.Range, n, e, 75*time.Millisecond, b)
	checkFigures(t, "tickets-server", by["tickets-server"].Figures, fx.Range, n, 0, 25*time.Millisecond, b)
	checkFigures(t, "tickets-orders", by["tickets-orders"].Figures, fx.Range, n, 0, 10*time.Millisecond, b)
	checkFigures(t, "weird", by[servicemaptest.Weird].Figures, fx.Range, servicemaptest.WeirdSpans, 0, 10*time.Millisecond, b)

	for name, want := range map[string]string{"tickets-api": "Lambda", "tickets-server": "ECS", "tickets-orders": "Lambda", servicemaptest.Weird: ""} {
		if p := by[name].Platform; p != want {
			t.Errorf("%s platform %q, want %q", name, p, want)
		}
	}
	res := by["tickets-server"].Resource
	if z := res["cloud.availability_zone"]; len(z) != 1 || z[0] != "us-east-1a" {
		t.Errorf("tickets-server zones %v", z)
	}
	if f := by["tickets-api"].Resource["faas.name"]; len(f) != 1 || f[0] != "tickets-api" {
		t.Errorf("tickets-api faas.name %v", f)
	}
	if _, ok := by["tickets-api"].Resource["cloud.availability_zone"]; ok {
		t.Errorf("tickets-api has a zone: %v", by["tickets-api"].Resource)
	}
}

// TestQuantileMatchesPromQL: figures computed in Go from the grouped
// buckets equal PromQL's histogram_quantile over the same series.
func TestQuantileMatchesPromQL(t *testing.T) {
	fx := servicemaptest.New(t)
	ctx := context.Background()
	d, err := fx.Map.Service(ctx, "tickets-server", fx.Range, "")
	if err != nil {
		t.Fatal(err)
	}
	w := fx.Range.End.Sub(fx.Range.Start).Milliseconds()
	for _, op := range d.Operations {
		if op.Name != "SELECT tickets" {
			continue
		}
		qs := `histogram_quantile(0.95, sum by (le) (increase(traces_spanmetrics_latency_bucket{service="tickets-server",span_name="SELECT tickets"}[` +
			strconv.FormatInt(w, 10) + `ms])))`
		q, err := fx.Engine.NewInstantQuery(ctx, fx.Queryable, nil, qs, fx.Range.End)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		v, err := q.Exec(ctx).Vector()
		if err != nil || len(v) != 1 {
			t.Fatalf("%s: %v %v", qs, v, err)
		}
		near(t, "p95 vs PromQL", op.P95, v[0].F)
		return
	}
	t.Fatal("no SELECT tickets operation")
}

func TestServiceDetail(t *testing.T) {
	fx := servicemaptest.New(t)
	ctx := context.Background()
	b := series.DefaultBuckets()
	d, err := fx.Map.Service(ctx, "tickets-server", fx.Range, "cloud.availability_zone")
	if err != nil {
		t.Fatal(err)
	}
	checkFigures(t, "tickets-server", d.Figures, fx.Range, n, 0, 25*time.Millisecond, b)
	if d.Platform != "ECS" {
		t.Errorf("platform %q", d.Platform)
	}
	ops := map[string]servicemap.Operation{}
	for _, op := range d.Operations {
		ops[op.Name+"/"+op.Kind] = op
	}
	if len(ops) != 3 {
		t.Errorf("operations %+v", d.Operations)
	}
	checkFigures(t, "GET /tickets", ops["GET /tickets/SPAN_KIND_SERVER"].Figures, fx.Range, n, 0, 25*time.Millisecond, b)
	checkFigures(t, "SELECT", ops["SELECT tickets/SPAN_KIND_CLIENT"].Figures, fx.Range, n, e, 5*time.Millisecond, b)
	checkFigures(t, "publish", ops["orders publish/SPAN_KIND_PRODUCER"].Figures, fx.Range, n, 0, 2*time.Millisecond, b)

	for k, want := range map[string]string{"cloud.availability_zone": "us-east-1a", "cloud.provider": "aws", "aws.ecs.task.family": "tickets-server"} {
		if v := d.Cloud[k]; len(v) != 1 || v[0].Value != want || v[0].Count != 3*n {
			t.Errorf("cloud[%s] = %+v, want %s x %d", k, v, want, 3*n)
		}
	}
	if _, ok := d.Cloud["deployment.environment.name"]; ok {
		t.Errorf("cloud section holds a non-cloud key: %v", d.Cloud)
	}
	if v := d.Attributes["deployment.environment.name"]; len(v) != 1 || v[0].Value != "demo" {
		t.Errorf("attributes %v", d.Attributes)
	}

	if d.GroupSource != "spanmetrics" || len(d.Groups) != 1 || d.Groups[0].Value != "us-east-1a" {
		t.Fatalf("groups %s %+v", d.GroupSource, d.Groups)
	}
	checkFigures(t, "zone group", d.Groups[0].Figures, fx.Range, n, 0, 25*time.Millisecond, b)

	// cloud.provider is not a span-metrics dimension: from the spans.
	d, err = fx.Map.Service(ctx, "tickets-api", fx.Range, "cloud.provider")
	if err != nil {
		t.Fatal(err)
	}
	if d.GroupSource != "spans" || len(d.Groups) != 1 || d.Groups[0].Value != "aws" {
		t.Fatalf("groups %s %+v", d.GroupSource, d.Groups)
	}
	checkFigures(t, "provider group", d.Groups[0].Figures, fx.Range, n, e, 75*time.Millisecond, spanBounds())
}

func TestUnknownService(t *testing.T) {
	fx := servicemaptest.New(t)
	_, err := fx.Map.Service(context.Background(), "nope", fx.Range, "")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err %v, want ErrNotFound", err)
	}
}

// TestWeirdName: quotes, backslashes and newlines in a service name are
// label values, never PromQL syntax.
func TestWeirdName(t *testing.T) {
	fx := servicemaptest.New(t)
	d, err := fx.Map.Service(context.Background(), servicemaptest.Weird, fx.Range, "http.route")
	if err != nil {
		t.Fatal(err)
	}
	checkFigures(t, "weird", d.Figures, fx.Range, servicemaptest.WeirdSpans, 0, 10*time.Millisecond, series.DefaultBuckets())
	if len(d.Operations) != 1 || d.Operations[0].Name != "op" {
		t.Errorf("operations %+v", d.Operations)
	}
	// A name that would close the matcher and add one must match nothing.
	if _, err := fx.Map.Service(context.Background(), `tickets-api"} or {service=~".+`, fx.Range, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("injection: err %v, want ErrNotFound", err)
	}
}

func TestGraph(t *testing.T) {
	fx := servicemaptest.New(t)
	g, err := fx.Map.Graph(context.Background(), fx.Range)
	if err != nil {
		t.Fatal(err)
	}
	b := series.DefaultBuckets()
	rate := float64(n) / fx.Range.End.Sub(fx.Range.Start).Seconds()
	type want struct {
		conn    string
		errs    int
		latency time.Duration
	}
	wantEdges := map[[2]string]want{
		{"user", "tickets-api"}:                 {"virtual_node", e, 75 * time.Millisecond}, // server side: the root span
		{"tickets-api", "tickets-server"}:       {"", 0, 25 * time.Millisecond},
		{"tickets-server", "tickets-database"}:  {"database", e, 5 * time.Millisecond}, // client side only
		{"tickets-server", "tickets-orders"}:    {"messaging_system", 0, 10 * time.Millisecond},
		{"tickets-api", "payments.example.com"}: {"virtual_node", 0, 40 * time.Millisecond},
		{"user", servicemaptest.Weird}:          {"virtual_node", 0, 10 * time.Millisecond},
	}
	if len(g.Edges) != len(wantEdges) {
		t.Errorf("%d edges, want %d: %+v", len(g.Edges), len(wantEdges), g.Edges)
	}
	for _, ed := range g.Edges {
		w, ok := wantEdges[[2]string{ed.Source, ed.Target}]
		if !ok {
			t.Errorf("unexpected edge %+v", ed)
			continue
		}
		if ed.ConnectionType != w.conn {
			t.Errorf("%s->%s connection %q, want %q", ed.Source, ed.Target, ed.ConnectionType, w.conn)
		}
		r := rate
		if ed.Target == servicemaptest.Weird {
			r = float64(servicemaptest.WeirdSpans) / fx.Range.End.Sub(fx.Range.Start).Seconds()
			near(t, "weird edge rate", ed.Rate, r)
			continue
		}
		near(t, ed.Source+"->"+ed.Target+" rate", ed.Rate, r)
		near(t, ed.Source+"->"+ed.Target+" errorRatio", ed.ErrorRatio, float64(w.errs)/n)
		near(t, ed.Source+"->"+ed.Target+" p95", ed.P95, wantQ(0.95, w.latency, b))
	}
	types := map[string]string{}
	for _, nd := range g.Nodes {
		types[nd.ID] = nd.Type
		if nd.ID == "tickets-database" {
			near(t, "database rate", nd.Rate, rate)
			near(t, "database errorRatio", nd.ErrorRatio, float64(e)/n)
		}
		if nd.ID == "tickets-api" {
			near(t, "tickets-api node errorRatio", nd.ErrorRatio, float64(e)/n)
			if nd.Platform != "Lambda" {
				t.Errorf("tickets-api platform %q", nd.Platform)
			}
		}
	}
	wantTypes := map[string]string{
		"user": "virtual", "tickets-api": "service", "tickets-server": "service", "tickets-orders": "service",
		"tickets-database": "database", "payments.example.com": "virtual", servicemaptest.Weird: "service",
	}
	if len(types) != len(wantTypes) {
		t.Errorf("nodes %v, want %v", types, wantTypes)
	}
	for id, ty := range wantTypes {
		if types[id] != ty {
			t.Errorf("node %q type %q, want %q", id, types[id], ty)
		}
	}
}

// TestSparkline: over a longer range the sparkline has a point per step;
// where there were calls, the ratios and quantiles equal the totals'
// (extrapolation scales calls and errors alike).
func TestSparkline(t *testing.T) {
	fx := servicemaptest.New(t)
	rng := servicemap.Range{Start: fx.Range.Start, End: fx.Range.Start.Add(3 * time.Minute), Step: 15 * time.Second}
	got, err := fx.Map.Services(context.Background(), rng)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		if s.Name != "tickets-api" {
			continue
		}
		sp := s.Sparkline
		if sp == nil || len(sp.Times) != 13 || len(sp.Rate) != 13 || len(sp.P99) != 13 {
			t.Fatalf("sparkline %+v", sp)
		}
		if sp.Times[1]-sp.Times[0] != 15000 || sp.Times[0] != rng.Start.UnixMilli() {
			t.Errorf("times %v", sp.Times)
		}
		seen := 0
		for i, r := range sp.Rate {
			if float64(r) > 0 {
				seen++
				near(t, "spark errorRatio", sp.ErrorRatio[i], float64(e)/n)
				near(t, "spark p50", sp.P50[i], wantQ(0.5, 75*time.Millisecond, series.DefaultBuckets()))
			} else if !math.IsNaN(float64(sp.P50[i])) {
				t.Errorf("point %d: no calls but p50 %v", i, sp.P50[i])
			}
		}
		if seen == 0 {
			t.Errorf("no point with calls: %+v", sp)
		}
		return
	}
	t.Fatal("no tickets-api")
}

func TestNumJSON(t *testing.T) {
	f := func(in servicemap.Num, want string) {
		t.Helper()
		b, err := json.Marshal(in)
		if err != nil || string(b) != want {
			t.Errorf("%v -> %s %v, want %s", in, b, err, want)
		}
	}
	f(servicemap.Num(math.NaN()), "null")
	f(servicemap.Num(math.Inf(1)), "null")
	f(0.25, "0.25")
	f(3, "3")
}

func TestNewNeedsEngine(t *testing.T) {
	if _, err := servicemap.New(servicemap.Config{}); err == nil {
		t.Error("New without an engine succeeded")
	}
}
