package spanmetrics

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/trenchcoat/trenchcoat/internal/spanmetrics/spantest"
)

// TestRealTSDB writes into the Prometheus TSDB the way the platform wires
// it (out-of-order window of 7 days): backfilled spans from three hours
// ago must land three hours ago even though the store already holds
// samples at the present time, and must read back through a Querier.
func TestRealTSDB(t *testing.T) {
	opts := tsdb.DefaultOptions()
	opts.OutOfOrderTimeWindow = (7 * 24 * time.Hour).Milliseconds()
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// The store already has live data (e.g. OTLP metrics) at "now".
	now := time.Now()
	app := db.AppenderV2(context.Background())
	if _, err := app.Append(0, labels.FromStrings("__name__", "up"), 0, now.UnixMilli(), 1, nil, nil, storage.AOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}

	g, err := New(Config{}, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := now.Add(-3 * time.Hour).Truncate(iv).Add(time.Second)
	// Two batches a minute apart in span time, so several intervals are written.
	for i := range 2 {
		td := spantest.Traces(spantest.Topology(base.Add(time.Duration(i)*time.Minute), 5, 2))
		if err := g.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ss := q.Select(context.Background(), true, nil,
		labels.MustNewMatcher(labels.MatchEqual, "__name__", MetricCalls),
		labels.MustNewMatcher(labels.MatchEqual, "service", "tickets-server"),
		labels.MustNewMatcher(labels.MatchEqual, "span_name", "SELECT tickets"),
		labels.MustNewMatcher(labels.MatchEqual, "status_code", "STATUS_CODE_UNSET"))
	n := 0
	for ss.Next() {
		n++
		it := ss.At().Iterator(nil)
		var got []spantest.Sample
		for it.Next() != 0 {
			ts, v := it.At()
			got = append(got, spantest.Sample{T: ts, V: v})
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		// zero, 4 at the first interval, then 4 at every interval for a
		// minute, then 8 (the second batch).
		first := ceilIv(base.Add(time.Second))
		if len(got) != 6 || got[0] != (spantest.Sample{T: first - iv.Milliseconds(), V: 0}) ||
			got[1] != (spantest.Sample{T: first, V: 4}) || got[len(got)-1] != (spantest.Sample{T: first + time.Minute.Milliseconds(), V: 8}) {
			t.Errorf("samples %v", got)
		}
		if d := now.Sub(time.UnixMilli(got[1].T)); d < 3*time.Hour-time.Minute || d > 3*time.Hour+time.Minute {
			t.Errorf("written %s ago, want 3h", d)
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d series, want 1", n)
	}
}
