package traceql

import (
	"context"
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/query/querytest"
	"github.com/trenchcoat/trenchcoat/internal/store"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// dataset is the generated traces and, per trace, its whole span set: the
// raw material of the brute-force answers.
type dataset struct {
	td     ptrace.Traces
	traces map[pcommon.TraceID]*traceData
}

func genDataset(n int) *dataset {
	td := querytest.GenTraces(1, n, t0, time.Hour)
	ds := &dataset{td: td, traces: map[pcommon.TraceID]*traceData{}}
	// Split the batch per trace, then build each trace's data.
	per := map[pcommon.TraceID]ptrace.Traces{}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				t, ok := per[sp.TraceID()]
				if !ok {
					t = ptrace.NewTraces()
					per[sp.TraceID()] = t
				}
				nrs := t.ResourceSpans().AppendEmpty()
				rs.Resource().CopyTo(nrs.Resource())
				sp.CopyTo(nrs.ScopeSpans().AppendEmpty().Spans().AppendEmpty())
			}
		}
	}
	for id, t := range per {
		ds.traces[id] = newTraceData(t)
	}
	return ds
}

// bruteSearch: every trace, every span, evaluated directly.
func (ds *dataset) bruteSearch(q *Query, start, end time.Time) map[string][]string {
	out := map[string][]string{}
	for id, t := range ds.traces {
		for _, i := range evalTrace(q.Spansets, t, start.UnixNano(), end.UnixNano()) {
			out[id.String()] = append(out[id.String()], t.rows[i].SpanID.String())
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func (ds *dataset) bruteMetrics(q *Query, req MetricsRequest) []Series {
	m := q.Metrics
	nb := req.Buckets()
	groups := map[string]*store.GroupSeries{}
	for _, t := range ds.traces {
		for _, i := range evalTrace(q.Spansets, t, req.Start.UnixNano(), req.End.UnixNano()) {
			r := &t.rows[i]
			labels := make([]string, len(m.By))
			for j, a := range m.By {
				labels[j], _ = lookup(a, r, t)
			}
			k := strings.Join(labels, "\x00")
			g := groups[k]
			if g == nil {
				g = &store.GroupSeries{Labels: labels, Counts: make([]float64, nb), Hist: make([][]uint64, nb)}
				for b := range g.Hist {
					g.Hist[b] = make([]uint64, len(store.DurationBuckets)+1)
				}
				groups[k] = g
			}
			b := int((r.Start - req.Start.UnixNano()) / int64(req.Step))
			g.Counts[b]++
			d := 0
			for d < len(store.DurationBuckets) && r.Duration > store.DurationBuckets[d] {
				d++
			}
			g.Hist[b][d]++
		}
	}
	var gs []store.GroupSeries
	for _, g := range groups {
		gs = append(gs, *g)
	}
	s, err := toSeries(m, gs, req, Limits{})
	if err != nil {
		panic(err)
	}
	return s
}

var searchQueries = []string{
	`{}`,
	`{ status = error }`,
	`{ status != error }`,
	`{ status = ok }`,
	`{ status = unset }`,
	`{ kind = server }`,
	`{ kind = client && status = error }`,
	`{ name = "SELECT tickets" }`,
	`{ name =~ "GET /tickets.*" }`,
	`{ name !~ "GET .*" }`,
	`{ statusMessage =~ ".*timeout.*" }`,
	`{ statusMessage = "" }`,
	`{ duration > 1s }`,
	`{ duration >= 30s }`,
	`{ duration < 2ms }`,
	`{ duration <= 5ms && duration > 1ms }`,
	`{ resource.service.name = "tickets-server" }`,
	`{ resource.service.name = "tickets-server" && status = error }`,
	`{ resource.cloud.availability_zone = "us-east-1b" }`,
	`{ resource.cloud.availability_zone =~ "us-east-1[ab]" }`,
	`{ resource.cloud.availability_zone != "us-east-1b" }`,
	`{ span.http.response.status_code >= 500 }`,
	`{ span.http.response.status_code = 200 }`,
	`{ .http.response.status_code > 200 && .http.response.status_code < 600 }`,
	`{ .http.route = "/orders" }`,
	`{ span.http.route = "/orders" || resource.service.name = "tickets-orders" }`,
	`{ .pool.utilization > 0.5 }`,
	`{ .pool.utilization <= 0.25 }`,
	`{ .faas.coldstart = true }`,
	`{ .faas.coldstart != true }`,
	`{ span.faas.coldstart = false }`,
	`{ .cloud.platform = "aws_ecs" }`,
	`{ span.cloud.platform = "aws_ecs" }`,
	`{ .db.system != nil }`,
	`{ .db.system = nil && kind = client }`,
	`{ !(status = error) }`,
	`{ !(resource.service.name = "tickets-api" || kind = server) }`,
	`{ !(.http.route = "/orders") }`,
	`{ rootName = "POST /orders" }`,
	`{ rootServiceName = "tickets-api" && status = error }`,
	`{ rootServiceName != "tickets-api" }`,
	`{ traceDuration > 30s }`,
	`{ traceDuration < 20ms && kind = server }`,
	`{ !(traceDuration > 30s) && name = "SELECT tickets" }`,
	`{ traceDuration > 30s || .http.route = "/orders" }`,
	`{ status = error } && { .http.route = "/orders" }`,
	`{ name = "charge" } || { .faas.coldstart = true }`,
	`{ resource.service.name = "tickets-api" } > { resource.service.name = "tickets-server" }`,
	`{ kind = server } > { kind = client }`,
	`{ resource.service.name = "tickets-api" } >> { name = "charge" }`,
	`{ rootName = "POST /orders" } >> { status = error }`,
	`{ name = "publish orders" } > { kind = consumer } > { name = "charge" }`,
	`({ kind = producer } >> { kind = internal }) || { status = error && kind = client }`,
	`{ .db.system = "postgresql" } && ({ .http.route = "/tickets" } || { .http.route = "/orders" })`,
	`{ resource.service.name = "nope" }`,
	`{ status = error } && { resource.service.name = "nope" }`,
}

var metricsQueries = []string{
	`{} | count_over_time()`,
	`{ status = error } | rate()`,
	`{ status = error } | rate() by (resource.cloud.availability_zone)`,
	`{ kind = server } | count_over_time() by (resource.service.name, name)`,
	`{ .http.route != nil } | rate() by (.http.route)`,
	`{ kind = client } | quantile_over_time(duration, 0.5, 0.95, 0.99)`,
	`{ resource.service.name = "tickets-server" } | quantile_over_time(duration, 0.9) by (resource.cloud.availability_zone)`,
	`{ name = "SELECT tickets" } | histogram_over_time(duration)`,
	`{ } | histogram_over_time(duration) by (status)`,
	`{ status = error } | rate() by (rootServiceName)`,
	`{ name =~ "GET .*" } | count_over_time() by (span.http.response.status_code)`,
	`{ traceDuration > 30s } | count_over_time() by (name)`,
	`{ status = error } && { .http.route = "/orders" } | count_over_time() by (kind)`,
	`{ kind = server } > { kind = client } | quantile_over_time(duration, 0.5)`,
	`{ resource.service.name = "nope" } | rate()`,
}

type searchKey struct {
	trace string
	spans []string
}

func runSemantics(t *testing.T, name string, r store.TraceReader, ds *dataset) {
	ctx := context.Background()
	start, end := t0.Add(5*time.Minute), t0.Add(55*time.Minute)
	t.Run(name+"/search", func(t *testing.T) {
		for _, qs := range searchQueries {
			q, err := Parse(qs)
			if err != nil {
				t.Fatalf("%s: %v", qs, err)
			}
			want := ds.bruteSearch(q, start, end)
			res, err := Search(ctx, r, q, SearchRequest{Start: start, End: end, Limit: 1 << 30, SpansPerTrace: 1 << 30}, Limits{})
			if err != nil {
				t.Fatalf("%s: %v", qs, err)
			}
			got := map[string][]string{}
			for i, tr := range res {
				if i > 0 && tr.StartTimeUnixNano > res[i-1].StartTimeUnixNano {
					t.Errorf("%s: results not newest first at %d", qs, i)
				}
				td := ds.traces[mustTraceID(tr.TraceID)]
				if tr.SpanCount != len(td.rows) || tr.ErrorCount != td.errors || tr.StartTimeUnixNano != td.start {
					t.Errorf("%s: trace %s summary %+v, want %d spans %d errors start %d", qs, tr.TraceID, tr, len(td.rows), td.errors, td.start)
				}
				for _, m := range tr.Matched {
					got[tr.TraceID] = append(got[tr.TraceID], m.SpanID)
				}
				sort.Strings(got[tr.TraceID])
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %d traces, want %d\n%s", qs, len(got), len(want), diffSearch(got, want))
			}
			// A small page: the traces with the newest matches, each with
			// its earliest matched spans and the count of all.
			page, err := Search(ctx, r, q, SearchRequest{Start: start, End: end, Limit: 5, SpansPerTrace: 2}, Limits{})
			if err != nil {
				t.Fatalf("%s: %v", qs, err)
			}
			byID := map[string]TraceResult{}
			type lastOf struct {
				id   string
				last int64
			}
			var lasts []lastOf
			for _, tr := range res {
				byID[tr.TraceID] = tr
				l := int64(0)
				for _, m := range tr.Matched {
					l = max(l, m.StartTimeUnixNano)
				}
				lasts = append(lasts, lastOf{tr.TraceID, l})
			}
			sort.Slice(lasts, func(i, j int) bool {
				if lasts[i].last != lasts[j].last {
					return lasts[i].last > lasts[j].last
				}
				return lasts[i].id < lasts[j].id
			})
			wantPage := map[string]bool{}
			for i := 0; i < len(lasts) && i < 5; i++ {
				wantPage[lasts[i].id] = true
			}
			if len(page) != len(wantPage) {
				t.Fatalf("%s: page of %d traces, want %d", qs, len(page), len(wantPage))
			}
			for i, tr := range page {
				full := byID[tr.TraceID]
				if !wantPage[tr.TraceID] || (i > 0 && tr.StartTimeUnixNano > page[i-1].StartTimeUnixNano) {
					t.Errorf("%s: page entry %d: %s not among the newest or out of order", qs, i, tr.TraceID)
					continue
				}
				if tr.MatchedCount != len(full.Matched) || len(tr.Matched) != min(2, len(full.Matched)) {
					t.Errorf("%s: page entry %d: %d of %d matched, want %d", qs, i, len(tr.Matched), tr.MatchedCount, len(full.Matched))
					continue
				}
				for j, m := range tr.Matched {
					if m != full.Matched[j] {
						t.Errorf("%s: page entry %d span %d: %+v, want %+v", qs, i, j, m, full.Matched[j])
					}
				}
			}
			if len(want) == 0 && !strings.Contains(qs, "nope") && !strings.Contains(qs, "!(traceDuration") {
				t.Logf("%s: matches nothing in the dataset", qs)
			}
		}
	})
	t.Run(name+"/metrics", func(t *testing.T) {
		for _, step := range []time.Duration{time.Minute, 7 * time.Minute} {
			req := MetricsRequest{Start: start, End: end, Step: step}
			for _, qs := range metricsQueries {
				q, err := Parse(qs)
				if err != nil {
					t.Fatalf("%s: %v", qs, err)
				}
				want := ds.bruteMetrics(q, req)
				got, err := Metrics(ctx, r, q, req, Limits{})
				if err != nil {
					t.Fatalf("%s: %v", qs, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s step %s:\n got %s\nwant %s", qs, step, fmtSeries(got), fmtSeries(want))
				}
			}
		}
	})
}

func mustTraceID(s string) pcommon.TraceID {
	var id pcommon.TraceID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		panic(fmt.Sprint("bad trace id ", s))
	}
	copy(id[:], b)
	return id
}

func diffSearch(got, want map[string][]string) string {
	var b strings.Builder
	n := 0
	for id, w := range want {
		if g := got[id]; !reflect.DeepEqual(g, w) && n < 5 {
			fmt.Fprintf(&b, "  trace %s: got %v want %v\n", id, g, w)
			n++
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok && n < 10 {
			fmt.Fprintf(&b, "  trace %s: got %v, not expected\n", id, g)
			n++
		}
	}
	return b.String()
}

func fmtSeries(ss []Series) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "\n  %v:", s.Labels)
		for i, p := range s.Points {
			if i > 8 {
				b.WriteString(" ...")
				break
			}
			fmt.Fprintf(&b, " %g", p.V)
		}
	}
	return b.String()
}

func TestSemanticsMemStore(t *testing.T) {
	ds := genDataset(600)
	mk := func(unsupported func(*store.Cond) bool) *querytest.Store {
		s := querytest.New()
		s.Unsupported = unsupported
		if err := s.WriteTraces(context.Background(), ds.td); err != nil {
			t.Fatal(err)
		}
		return s
	}
	runSemantics(t, "pushdown", mk(nil), ds)
	// A backend without regexps, and one that refuses every filter: the
	// evaluator must fall back and still give the same answers.
	runSemantics(t, "noregex", mk(func(c *store.Cond) bool { return c.Op == store.OpRegex || c.Op == store.OpNotRegex }), ds)
	runSemantics(t, "nofilters", mk(func(*store.Cond) bool { return true }), ds)
}

// TestSemanticsByHand checks the brute-force evaluation itself on facts of
// the generated data that are known without it.
func TestSemanticsByHand(t *testing.T) {
	ds := genDataset(300)
	count := func(qs string) (traces, spans int) {
		q, err := Parse(qs)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ds.bruteSearch(q, t0, t0.Add(2*time.Hour)) {
			traces++
			spans += len(m)
		}
		return
	}
	var orders, ordersWithRoot, withRoot, failed int
	for _, td := range ds.traces {
		isOrders, isFail := false, false
		for _, r := range td.rows {
			isOrders = isOrders || r.Name == "charge"
			isFail = isFail || r.StatusMessage != "" && r.Name == "SELECT tickets"
		}
		if isOrders {
			orders++
			if td.root >= 0 {
				ordersWithRoot++
			}
		}
		if td.root >= 0 {
			withRoot++
		}
		if isFail {
			failed++
		}
	}
	f := func(qs string, wantTraces, wantSpans int) {
		t.Helper()
		gt, gs := count(qs)
		if gt != wantTraces || gs != wantSpans {
			t.Errorf("%s: %d traces %d spans, want %d traces %d spans", qs, gt, gs, wantTraces, wantSpans)
		}
	}
	n := len(ds.traces)
	f(`{}`, n, 4*n+3*orders-(n-withRoot))
	f(`{ name = "charge" }`, orders, orders)
	f(`{ rootServiceName = "tickets-api" } >> { name = "charge" }`, ordersWithRoot, ordersWithRoot)
	f(`{ kind = server } >> { name = "charge" }`, orders, orders)
	f(`{ kind = producer } > { kind = consumer } > { name = "charge" }`, orders, orders)
	f(`{ kind = producer } > { name = "charge" }`, 0, 0)
	f(`{ resource.service.name = "tickets-api" } > { resource.service.name = "tickets-server" }`, n, n)
	f(`{ statusMessage =~ "timeout.*" }`, failed, failed)
	f(`{ statusMessage =~ "timeout" }`, 0, 0) // anchored
	f(`{ status = error && kind = client } && { kind = server && status = error }`, failed, 2*failed+countFailedWithRoot(ds))
	f(`{ name = "charge" } || { name = "publish orders" }`, orders, 2*orders)
	// db, server, the client calling it, and the root when present.
	f(`{ duration >= 30s }`, failed, 3*failed+countFailedWithRoot(ds))
}

func countFailedWithRoot(ds *dataset) int {
	n := 0
	for _, td := range ds.traces {
		if td.root >= 0 && td.rows[td.root].StatusCode == ptrace.StatusCodeError {
			n++
		}
	}
	return n
}
