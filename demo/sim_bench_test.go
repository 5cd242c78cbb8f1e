package demo

import (
	"context"
	"testing"
	"time"
)

// BenchmarkSimIncidentMinute generates one simulated minute of the incident
// at full surge (about 6 requests/s) and exports it to a recording server.
func BenchmarkSimIncidentMinute(b *testing.B) {
	rec := newRecorder(&testing.T{})
	defer rec.srv.Stop()
	h, err := newHub(rec.addr, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer h.shutdown(context.Background())
	h.blocking.Store(true)
	st, _ := loadState("", 1)
	cfg := Config{Seed: 1}
	cfg.setDefaults()
	sc := scenarios["peak-sale"](Tuning{SurgeFactor: cfg.SurgeFactor, CrashAfter: time.Hour})
	start := time.Date(2026, 11, 28, 15, 0, 0, 0, time.UTC)
	w := newSimWorld(h, st, sc, cfg, 1, backfillRate, start)
	w.incident = start.Add(-10 * time.Minute)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	t := start
	for range b.N {
		for range 60 {
			w.step(ctx, t, time.Second)
			t = t.Add(time.Second)
		}
		h.flush(ctx)
	}
	b.StopTimer()
	spans, _, _ := rec.snapshot()
	b.ReportMetric(float64(len(spans))/float64(b.N), "spans/op")
}
