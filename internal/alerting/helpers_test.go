package alerting

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
	"go.uber.org/goleak"

	"github.com/trenchcoat/trenchcoat/internal/slo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// openDB opens a real TSDB in a temporary directory. Samples may be
// appended far in the past (backfill) and in the future (test scenarios).
func openDB(t testing.TB) *tsdb.DB {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = 0
	// Long head blocks so that a test can write days of history in any order.
	opts.MinBlockDuration = int64(30 * 24 * time.Hour / time.Millisecond)
	opts.MaxBlockDuration = opts.MinBlockDuration
	opts.OutOfOrderTimeWindow = int64(365 * 24 * time.Hour / time.Millisecond)
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func newEngine() *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{
		MaxSamples:    50_000_000,
		Timeout:       time.Minute,
		LookbackDelta: 5 * time.Minute,
	})
}

// series appends one counter: value(i) at start + i*step for i in [0, n).
func series(t testing.TB, db *tsdb.DB, lbls labels.Labels, start time.Time, step time.Duration, n int, value func(i int) float64) {
	t.Helper()
	app := db.Appender(context.Background())
	for i := range n {
		if _, err := app.Append(0, lbls, start.Add(time.Duration(i)*step).UnixMilli(), value(i)); err != nil {
			t.Fatalf("append %s: %v", lbls, err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

func calls(svc, spanName, status string, extra ...string) labels.Labels {
	kv := append([]string{
		"__name__", slo.CallsMetric, "service", svc, "span_kind", slo.SpanKindServer,
		"span_name", spanName, "status_code", status,
	}, extra...)
	return labels.FromStrings(kv...)
}

func mustSLO(t testing.TB, yaml string) slo.SLO {
	t.Helper()
	s, err := slo.ParseOne([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func labelsOf(name string, kv ...string) labels.Labels {
	return labels.FromStrings(append([]string{"__name__", name}, kv...)...)
}
