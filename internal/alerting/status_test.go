package alerting

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb"
)

var statusEnd = time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)

const statusSLO = `
name: s-success
service: s
objective: 0.9
window: 7d
sli: {successRate: {service: s}}
groupBy: [span_name]
`

// writeHour writes one hour of 15 s samples ending at statusEnd, as the
// span-metrics generator would: per step, "GET /a" gets 99 good and 1 bad
// call, "POST /b" 90 good and 10 bad. reset(i) maps the counter value of a
// step, to simulate restarts.
func writeHour(t testing.TB, db *tsdb.DB, reset func(i, perStep int) float64) {
	start := statusEnd.Add(-time.Hour)
	const n = 241 // both ends included
	f := func(per int) func(int) float64 { return func(i int) float64 { return reset(i, per) } }
	series(t, db, calls("s", "GET /a", "STATUS_CODE_UNSET"), start, 15*time.Second, n, f(99))
	series(t, db, calls("s", "GET /a", "STATUS_CODE_ERROR"), start, 15*time.Second, n, f(1))
	series(t, db, calls("s", "POST /b", "STATUS_CODE_UNSET"), start, 15*time.Second, n, f(90))
	series(t, db, calls("s", "POST /b", "STATUS_CODE_ERROR"), start, 15*time.Second, n, f(10))
	// Another service's failures must not count.
	series(t, db, calls("other", "GET /a", "STATUS_CODE_ERROR"), start, 15*time.Second, n, f(1000))
}

func near(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: null, want %v", what, want)
		return
	}
	if math.Abs(*got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s: %v, want %v", what, *got, want)
	}
}

// checkHour checks the figures of writeHour's data, computed by hand:
// per step 200 calls, 11 bad, so the error ratio is 0.055 everywhere; the
// budget is 0.1, so 55% of it is consumed and the burn rate is 0.55; at
// that rate the remaining 45% lasts 0.45 * 7d / 0.55.
func checkHour(t *testing.T, st *Status) {
	t.Helper()
	if st.NoData {
		t.Fatalf("no data: %s", st.Message)
	}
	near(t, "errorRatio", st.ErrorRatio, 0.055)
	near(t, "sli", st.SLI, 0.945)
	near(t, "consumed%", st.Budget.ConsumedPercent, 55)
	near(t, "remaining%", st.Budget.RemainingPercent, 45)
	// The hour's first sample sits at the window's left edge with value
	// 0, so increase() has nothing to extrapolate: 240 steps exactly.
	near(t, "totalEvents", st.Budget.TotalEvents, 240*200)
	near(t, "badEvents", st.Budget.BadEvents, 240*11)
	near(t, "allowedBad", st.Budget.AllowedBadEvents, 0.1*240*200)
	if st.Budget.TotalPercent != 10 {
		t.Errorf("budget total %v%%, want 10", st.Budget.TotalPercent)
	}
	near(t, "currentBurnRate", st.CurrentBurnRate, 0.55)
	near(t, "timeToExhaustion", st.TimeToExhaustionSeconds, math.Round(0.45*7*24*3600/0.55))
	near(t, "eventRate.total", st.EventRate.Total, 200.0/15)
	near(t, "eventRate.bad", st.EventRate.Bad, 11.0/15)
	// Less data than the window: one hour of 7 days.
	if st.DataSince == nil || !st.DataSince.Equal(statusEnd.Add(-time.Hour)) {
		t.Errorf("dataSince %v", st.DataSince)
	}
	if math.Abs(st.Coverage-1.0/168) > 1e-12 {
		t.Errorf("coverage %v, want 1/168", st.Coverage)
	}
	if !strings.Contains(st.Message, "has data for 1h of its 7d") {
		t.Errorf("message %q", st.Message)
	}
	for _, br := range st.BurnRates {
		switch br.Window {
		case "5m", "30m", "1h", "2h", "6h", "1d", "3d", "7d":
			near(t, "burn "+br.Window, br.BurnRate, 0.55)
		default:
			t.Errorf("unexpected window %s", br.Window)
		}
	}
	if len(st.BurnRates) != 8 {
		t.Errorf("%d burn rates", len(st.BurnRates))
	}
	// Breakdown over the last 30 minutes: POST /b has 10 bad calls a step
	// of 100 and GET /a 1; 120 steps each.
	if len(st.Breakdown) != 1 || st.Breakdown[0].Label != "span_name" || len(st.Breakdown[0].Values) != 2 {
		t.Fatalf("breakdown %+v", st.Breakdown)
	}
	b, a := st.Breakdown[0].Values[0], st.Breakdown[0].Values[1]
	if b.Value != "POST /b" || a.Value != "GET /a" {
		t.Fatalf("worst first: got %q then %q", b.Value, a.Value)
	}
	near(t, "POST /b bad", &b.BadEvents, 1200)
	near(t, "POST /b total", &b.TotalEvents, 12000)
	near(t, "POST /b ratio", b.ErrorRatio, 0.1)
	near(t, "POST /b share", b.BadShare, 1200.0/1320)
	near(t, "POST /b rate", &b.TotalRate, 100.0/15)
	near(t, "GET /a ratio", a.ErrorRatio, 0.01)
	if _, err := json.Marshal(st); err != nil {
		t.Fatal(err)
	}
}

func status(t *testing.T, db *tsdb.DB, yaml string) *Status {
	t.Helper()
	st, err := ComputeStatus(context.Background(), newEngine(), db, mustSLO(t, yaml), statusEnd.Add(-30*time.Minute), statusEnd)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestStatusLessDataThanWindow(t *testing.T) {
	db := openDB(t)
	writeHour(t, db, func(i, per int) float64 { return float64(i * per) })
	checkHour(t, status(t, db, statusSLO))
}

// Counters that restart (a process restart) must count the same events.
func TestStatusCounterResets(t *testing.T) {
	db := openDB(t)
	writeHour(t, db, func(i, per int) float64 {
		switch {
		case i <= 80:
			return float64(i * per)
		case i <= 170: // restarted after step 80, counting from zero
			return float64((i - 80) * per)
		default: // and again after step 170
			return float64((i - 170) * per)
		}
	})
	checkHour(t, status(t, db, statusSLO))
}

func TestStatusNoTraffic(t *testing.T) {
	f := func(name string, write func(db *tsdb.DB)) {
		t.Helper()
		db := openDB(t)
		write(db)
		st := status(t, db, statusSLO)
		if !st.NoData || !strings.HasPrefix(st.Message, "no data") {
			t.Errorf("%s: noData=%v message=%q", name, st.NoData, st.Message)
		}
		if st.SLI != nil || st.ErrorRatio != nil || st.Budget.ConsumedPercent != nil || st.Budget.RemainingPercent != nil ||
			st.CurrentBurnRate != nil || st.TimeToExhaustionSeconds != nil {
			t.Errorf("%s: numbers without data: %+v", name, st)
		}
		for _, br := range st.BurnRates {
			if br.BurnRate != nil || br.ErrorRatio != nil {
				t.Errorf("%s: burn rate %s without data", name, br.Window)
			}
		}
		// JSON cannot carry NaN: marshalling proves there is none.
		if _, err := json.Marshal(st); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	f("no series", func(*tsdb.DB) {})
	f("flat counters", func(db *tsdb.DB) {
		writeHour(t, db, func(i, per int) float64 { return 5000 })
	})
	f("only another service", func(db *tsdb.DB) {
		series(t, db, calls("other", "GET /", "STATUS_CODE_ERROR"), statusEnd.Add(-time.Hour), 15*time.Second, 241, func(i int) float64 { return float64(i) })
	})
}

func TestStatusExhausted(t *testing.T) {
	db := openDB(t)
	writeHour(t, db, func(i, per int) float64 { return float64(i * per) })
	// The same data against a 99% objective: 5.5% errors is 550% of the budget.
	st := status(t, db, strings.Replace(statusSLO, "objective: 0.9", "objective: 0.99", 1))
	near(t, "consumed%", st.Budget.ConsumedPercent, 550)
	near(t, "remaining%", st.Budget.RemainingPercent, -450)
	near(t, "timeToExhaustion", st.TimeToExhaustionSeconds, 0)
	if !st.Budget.Exhausted || st.TimeToExhaustion != "exhausted" {
		t.Errorf("exhausted=%v tte=%q", st.Budget.Exhausted, st.TimeToExhaustion)
	}
}

// Good/total ratio SLIs where the good counter is missing for a group
// count every event of that group as bad.
func TestStatusGoodRatio(t *testing.T) {
	db := openDB(t)
	start := statusEnd.Add(-time.Hour)
	series(t, db, labelsOf("req_total", "route", "/a"), start, 15*time.Second, 241, func(i int) float64 { return float64(10 * i) })
	series(t, db, labelsOf("ok_total", "route", "/a"), start, 15*time.Second, 241, func(i int) float64 { return float64(9 * i) })
	series(t, db, labelsOf("req_total", "route", "/b"), start, 15*time.Second, 241, func(i int) float64 { return float64(10 * i) })
	st := status(t, db, "name: r\nobjective: 0.5\nwindow: 7d\nsli: {ratio: {good: ok_total, total: req_total}}\ngroupBy: [route]\n")
	// 20 calls a step, 9 good: 11/20 bad.
	near(t, "errorRatio", st.ErrorRatio, 0.55)
	if v := st.Breakdown[0].Values[0]; v.Value != "/b" || v.ErrorRatio == nil || *v.ErrorRatio != 1 {
		t.Errorf("worst route %+v", v)
	}
}
