package alerting

import (
	"context"
	"testing"
	"time"
)

// BenchmarkStatus measures GET /api/v1/slos/{name}'s computation over an
// hour of span metrics for two operations (five series, 15 s samples).
func BenchmarkStatus(b *testing.B) {
	db := openDB(b)
	writeHour(b, db, func(i, per int) float64 { return float64(i * per) })
	s := mustSLO(b, statusSLO)
	engine := newEngine()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ComputeStatus(context.Background(), engine, db, s, statusEnd.Add(-30*time.Minute), statusEnd); err != nil {
			b.Fatal(err)
		}
	}
}
