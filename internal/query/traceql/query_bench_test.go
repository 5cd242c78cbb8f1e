package traceql

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/trenchcoat/trenchcoat/internal/query/querytest"
	"github.com/trenchcoat/trenchcoat/internal/store/columnar"
)

// BenchmarkQueries measures the queries issue 3 sets targets for, on the
// embedded engine with generated demo-shaped spans flushed into blocks.
// TRENCHCOAT_BENCH_SPANS sets the size (default 200,000; the target is
// stated for 10,000,000).
func BenchmarkQueries(b *testing.B) {
	n := 200_000
	if s := os.Getenv("TRENCHCOAT_BENCH_SPANS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	st, err := columnar.Open(columnar.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	end := start.Add(time.Hour)
	var someTrace pcommon.TraceID
	spans := 0
	for seed := uint64(1); spans < n; seed++ {
		td := querytest.GenTraces(seed, 2000, start, time.Hour)
		spans += td.SpanCount()
		someTrace = td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()
		if err := st.WriteTraces(ctx, td); err != nil {
			b.Fatal(err)
		}
	}
	st.Flush()
	st.Maintain() // compact, as "in compacted blocks" asks, before measuring
	b.Logf("%d spans", spans)

	run := func(name, qs string, fn func(q *Query) error) {
		q, err := Parse(qs)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := fn(q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	run("rate_by_zone_1h_60s", `{ status = error } | rate() by (resource.cloud.availability_zone)`, func(q *Query) error {
		_, err := Metrics(ctx, st, q, MetricsRequest{Start: start, End: end, Step: time.Minute}, Limits{})
		return err
	})
	run("search_errors_of_service", `{ resource.service.name = "tickets-server" && status = error }`, func(q *Query) error {
		_, err := Search(ctx, st, q, SearchRequest{Start: start, End: end, Limit: 20}, Limits{})
		return err
	})
	run("search_structural", `{ kind = server } >> { name = "charge" }`, func(q *Query) error {
		_, err := Search(ctx, st, q, SearchRequest{Start: start, End: end, Limit: 20}, Limits{})
		return err
	})
	run("trace_by_id", `{}`, func(*Query) error {
		_, err := st.GetTrace(ctx, someTrace)
		return err
	})
}
