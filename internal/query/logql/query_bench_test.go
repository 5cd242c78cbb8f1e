package logql

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/query/querytest"
	"github.com/trenchcoat/trenchcoat/internal/store/columnar"
)

// BenchmarkQueries measures issue 3's log query target on the embedded
// engine with generated lines flushed into blocks. TRENCHCOAT_BENCH_LOGS
// sets the size (default 200,000; the target is stated for 10,000,000).
func BenchmarkQueries(b *testing.B) {
	n := 200_000
	if s := os.Getenv("TRENCHCOAT_BENCH_LOGS"); s != "" {
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
	for seed, done := uint64(1), 0; done < n; seed++ {
		batch := min(10000, n-done)
		if err := st.WriteLogs(ctx, querytest.GenLogs(seed, batch, start, time.Hour)); err != nil {
			b.Fatal(err)
		}
		done += batch
	}
	st.Flush()
	st.Maintain() // compact, as "in compacted blocks" asks, before measuring
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
	metric := func(q *Query) error {
		_, err := QueryMetric(ctx, st, q.Metric, MetricRequest{Start: start, End: end, Step: time.Minute}, Limits{})
		return err
	}
	run("count_fatal_1m", `count_over_time({log_group=~".+"} |= "FATAL" [1m])`, metric)
	run("sum_by_level_logfmt", `sum by (level) (count_over_time({service_name="tickets-server"} | logfmt | status >= 500 [5m]))`, metric)
	run("tail_100", `{service_name="tickets-server"} |= "pool"`, func(q *Query) error {
		_, err := QueryLogs(ctx, st, q.Log, LogRequest{Start: start, End: end, Limit: 100, Backward: true}, Limits{})
		return err
	})
}
