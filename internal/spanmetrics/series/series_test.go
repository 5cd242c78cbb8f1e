package series

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.uber.org/goleak"

	"github.com/trenchcoat/trenchcoat/internal/spanmetrics/spantest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDefaultBuckets(t *testing.T) {
	r, err := New(Config{Shape: Shape{Histograms: []string{"h"}}, Labels: func([]string, *labels.ScratchBuilder) {}}, spantest.NewAppendable())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128", "0.256", "0.512",
		"1.024", "2.048", "4.096", "8.192", "16.384", "30", "60", "+Inf"}
	if !slices.Equal(r.les, want) {
		t.Errorf("le values %v, want %v", r.les, want)
	}
}

// Two keys with the same hash are two series (a chain), and going stale
// unlinks only the idle one.
func TestHashCollision(t *testing.T) {
	e := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := e.Add(-5 * time.Minute)
	app := spantest.NewAppendable()
	r, err := New(Config{
		Shape:      Shape{Counters: []string{"c_total"}},
		StaleAfter: time.Minute,
		Labels:     func(k []string, b *labels.ScratchBuilder) { b.Add("k", k[0]) },
		Now:        func() time.Time { return now },
	}, app)
	if err != nil {
		t.Fatal(err)
	}
	add := func(key string, at time.Time) {
		tx := r.Begin()
		s := tx.Series(42, []string{key})
		tx.Delta(s, at.UnixNano())[0]++
		tx.End()
	}
	add("a", e.Add(-5*time.Minute))
	add("b", e.Add(-5*time.Minute))
	add("a", e.Add(-5*time.Minute))
	if n := r.Len(); n != 2 {
		t.Fatalf("%d series, want 2", n)
	}
	now = e.Add(-4 * time.Minute)
	if err := r.Advance(context.Background(), math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	now = e.Add(-3 * time.Minute)
	add("b", now) // b stays alive, a goes idle
	now = e.Add(-150 * time.Second)
	if err := r.Advance(context.Background(), math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if n := r.Len(); n != 1 {
		t.Errorf("%d series after a went stale, want 1", n)
	}
	last := app.Last("c_total")
	if last[`{k="a"}`] != 2 || last[`{k="b"}`] != 2 {
		t.Errorf("last values %v", last)
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAppendFailuresReported(t *testing.T) {
	app := spantest.NewAppendable()
	app.Refuse = func(ls labels.Labels, t int64) bool { return true }
	r, err := New(Config{Shape: Shape{Counters: []string{"c_total"}}, Labels: func([]string, *labels.ScratchBuilder) {}}, app)
	if err != nil {
		t.Fatal(err)
	}
	tx := r.Begin()
	tx.Delta(tx.Series(1, nil), time.Now().Add(-time.Minute).UnixNano())[0]++
	tx.End()
	if err := r.Flush(context.Background()); err == nil {
		t.Error("Flush hid the store's refusal")
	}
}

// Spans scattered over days: each series writes its own intervals, and a
// flush writes what is pending without extending idle series to now.
func TestScatteredSpans(t *testing.T) {
	now := time.Now()
	app := spantest.NewAppendable()
	r, err := New(Config{
		Shape:  Shape{Counters: []string{"c_total"}},
		Labels: func(k []string, b *labels.ScratchBuilder) { b.Add("k", k[0]) },
	}, app)
	if err != nil {
		t.Fatal(err)
	}
	tx := r.Begin()
	for i, ago := range []time.Duration{6 * 24 * time.Hour, 3 * 24 * time.Hour, time.Hour} {
		tx.Delta(tx.Series(uint64(i), []string{ago.String()}), now.Add(-ago).UnixNano())[0]++
	}
	tx.End()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := app.Count(); n != 6 {
		t.Errorf("%d samples, want 6 (a zero and a one per series)", n)
	}
}
