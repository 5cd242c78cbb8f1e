package alerting

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/trenchcoat/trenchcoat/internal/slo"
)

// Status is the state of an SLO at one time, computed with PromQL over the
// raw SLI series (not the recorded ratios), so that backfilled history
// counts even before the recording rules ran. Numbers that cannot be
// computed (no traffic) are null, never NaN.
type Status struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Service     string    `json:"service,omitempty"`
	Objective   float64   `json:"objective"`
	Window      string    `json:"window"`
	Time        time.Time `json:"time"`
	// NoData is true when the window holds no events; Message says why.
	NoData  bool   `json:"noData"`
	Message string `json:"message,omitempty"`
	// SLI is the good-event ratio over the SLO window.
	SLI        *float64 `json:"sli"`
	ErrorRatio *float64 `json:"errorRatio"`
	// DataSince is the first sample of the SLI's series in the window;
	// Coverage the share of the window since then (1 = full window). With
	// less data than the window, every figure is over the part that has
	// data.
	DataSince *time.Time `json:"dataSince,omitempty"`
	Coverage  float64    `json:"coverage"`
	Budget    Budget     `json:"errorBudget"`
	BurnRates []BurnRate `json:"burnRates"`
	// CurrentBurnRate is the burn rate over CurrentBurnRateWindow (1h, the
	// fast page alert's long window).
	CurrentBurnRate       *float64 `json:"currentBurnRate"`
	CurrentBurnRateWindow string   `json:"currentBurnRateWindow"`
	// TimeToExhaustionSeconds is when the remaining budget is gone at the
	// current burn rate: 0 when already exhausted, null when not burning.
	TimeToExhaustionSeconds *float64      `json:"timeToExhaustionSeconds"`
	TimeToExhaustion        string        `json:"timeToExhaustion,omitempty"`
	EventRate               EventRate     `json:"eventRate"`
	Alerts                  []RuleState   `json:"alerts"`
	Breakdown               []Breakdown   `json:"breakdown"`
	Range                   StatusRange   `json:"range"`
	Queries                 StatusQueries `json:"queries"`
}

// Budget is the error budget over the SLO window.
type Budget struct {
	// TotalPercent is the allowed share of bad events (1 - objective).
	TotalPercent float64 `json:"totalPercent"`
	// ConsumedPercent is bad events as a share of the allowed ones; over
	// 100 when overspent. RemainingPercent is 100 minus it (may be negative).
	ConsumedPercent  *float64 `json:"consumedPercent"`
	RemainingPercent *float64 `json:"remainingPercent"`
	TotalEvents      *float64 `json:"totalEvents"`
	BadEvents        *float64 `json:"badEvents"`
	AllowedBadEvents *float64 `json:"allowedBadEvents"`
	Exhausted        bool     `json:"exhausted"`
}

// BurnRate is the error ratio over one window as a multiple of the budget.
type BurnRate struct {
	Window     string   `json:"window"`
	ErrorRatio *float64 `json:"errorRatio"`
	BurnRate   *float64 `json:"burnRate"`
}

// EventRate is events per second over Window.
type EventRate struct {
	Window string   `json:"window"`
	Total  *float64 `json:"total"`
	Bad    *float64 `json:"bad"`
}

// Breakdown ranks the values of one groupBy label over the status range,
// the ones with the most bad events first.
type Breakdown struct {
	Label  string           `json:"label"`
	Values []BreakdownValue `json:"values"`
}

// BreakdownValue is one label value's share of the events.
type BreakdownValue struct {
	Value       string   `json:"value"`
	TotalEvents float64  `json:"totalEvents"`
	BadEvents   float64  `json:"badEvents"`
	TotalRate   float64  `json:"totalRate"`
	BadRate     float64  `json:"badRate"`
	ErrorRatio  *float64 `json:"errorRatio"`
	// BadShare is this value's share of all bad events in the range.
	BadShare *float64 `json:"badShare"`
}

// StatusRange is the range the breakdown covers.
type StatusRange struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// StatusQueries are PromQL expressions a UI can chart with query_range.
type StatusQueries struct {
	ErrorRatio5m  string `json:"errorRatio5m"`
	ErrorRatio1h  string `json:"errorRatio1h"`
	WindowSLI     string `json:"windowSLI"`
	TotalRate     string `json:"totalRate"`
	BadRate       string `json:"badRate"`
	RecordedRatio string `json:"recordedRatio"`
}

const (
	currentBurnWindow = time.Hour
	eventRateWindow   = 5 * time.Minute
	breakdownLimit    = 10
)

// Status computes the status of SLO name at end, with the breakdown over
// [start, end]. It returns ErrSLONotFound for an unknown SLO.
func (m *Manager) Status(ctx context.Context, name string, start, end time.Time) (*Status, error) {
	s, ok := m.SLO(name)
	if !ok {
		return nil, fmt.Errorf("%q: %w", name, ErrSLONotFound)
	}
	st, err := ComputeStatus(ctx, m.engine, m.q, s, start, end)
	if err != nil {
		return nil, err
	}
	st.Alerts = m.RuleStates(name)
	return st, nil
}

// ComputeStatus is Status without alert states, for any valid SLO.
func ComputeStatus(ctx context.Context, engine *promql.Engine, q storage.Queryable, s slo.SLO, start, end time.Time) (*Status, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if !start.Before(end) {
		start = end.Add(-time.Hour)
	}
	window := time.Duration(s.Window)
	budget := s.ErrorBudget()
	st := &Status{
		Name: s.Name, Description: s.Description, Service: s.Service,
		Objective: s.Objective, Window: s.Window.String(), Time: end,
		Budget:                Budget{TotalPercent: round(budget * 100)},
		CurrentBurnRateWindow: slo.Duration(currentBurnWindow).String(),
		EventRate:             EventRate{Window: slo.Duration(eventRateWindow).String()},
		Alerts:                []RuleState{},
		Breakdown:             []Breakdown{},
		Range:                 StatusRange{Start: start, End: end},
	}
	ev := evaluator{ctx: ctx, engine: engine, q: q, ts: end}

	badE, totalE := s.EventsExpr("increase", window)
	total, okT, err := ev.scalar(totalE)
	if err != nil {
		return nil, err
	}
	bad, okB, err := ev.scalar(badE)
	if err != nil {
		return nil, err
	}
	if since, err := firstSample(ctx, q, s.TotalSelector(), end.Add(-window), end); err != nil {
		return nil, err
	} else if since != nil {
		st.DataSince = since
		st.Coverage = math.Min(1, float64(end.Sub(*since))/float64(window))
	}
	switch {
	case !okT:
		st.NoData, st.Message = true, "no data: the SLI has no series in the window"
	case total <= 0:
		st.NoData, st.Message = true, "no data: no events in the window"
	case !okB:
		// Cannot happen with the "or 0 *" in EventsExpr; be safe anyway.
		st.NoData, st.Message = true, "no data: bad events could not be computed"
	}
	if !st.NoData {
		bad = math.Max(0, math.Min(bad, total))
		ratio := bad / total
		st.ErrorRatio = ptr(ratio)
		st.SLI = ptr(1 - ratio)
		consumed := ratio / budget * 100
		st.Budget.ConsumedPercent = ptr(round(consumed))
		st.Budget.RemainingPercent = ptr(round(100 - consumed))
		st.Budget.TotalEvents = ptr(total)
		st.Budget.BadEvents = ptr(bad)
		st.Budget.AllowedBadEvents = ptr(budget * total)
		st.Budget.Exhausted = consumed >= 100
		if st.Coverage > 0 && st.Coverage < 0.999 {
			st.Message = fmt.Sprintf("the window has data for %s of its %s; figures cover that part",
				model.Duration(end.Sub(*st.DataSince).Round(time.Minute)), s.Window)
		}
	}

	for _, w := range slo.RuleWindows(window) {
		br := BurnRate{Window: slo.Duration(w).String()}
		if v, ok, err := ev.scalar(s.ErrorRatioExpr(w)); err != nil {
			return nil, err
		} else if ok {
			br.ErrorRatio = ptr(v)
			br.BurnRate = ptr(v / budget)
			if w == currentBurnWindow {
				st.CurrentBurnRate = br.BurnRate
			}
		}
		st.BurnRates = append(st.BurnRates, br)
	}
	if st.Budget.RemainingPercent != nil {
		remaining := *st.Budget.RemainingPercent / 100
		switch {
		case remaining <= 0:
			st.TimeToExhaustionSeconds = ptr(0.0)
			st.TimeToExhaustion = "exhausted"
		case st.CurrentBurnRate != nil && *st.CurrentBurnRate > 0:
			// Burning at rate b uses b/window of the budget per unit of time.
			sec := remaining * window.Seconds() / *st.CurrentBurnRate
			st.TimeToExhaustionSeconds = ptr(math.Round(sec))
			if sec < 100*365*24*3600 { // beyond that, time.Duration overflows and nobody cares
				st.TimeToExhaustion = model.Duration(time.Duration(math.Round(sec)) * time.Second).String()
			} else {
				st.TimeToExhaustion = "over 100y"
			}
		}
	}

	badR, totalR := s.EventsExpr("rate", eventRateWindow)
	if v, ok, err := ev.scalar(totalR); err != nil {
		return nil, err
	} else if ok {
		st.EventRate.Total = ptr(v)
		if b, ok, err := ev.scalar(badR); err != nil {
			return nil, err
		} else if ok {
			st.EventRate.Bad = ptr(b)
		}
	}

	rng := end.Sub(start)
	for _, label := range s.GroupBy {
		bd, err := breakdown(ev, s, label, rng)
		if err != nil {
			return nil, err
		}
		st.Breakdown = append(st.Breakdown, bd)
	}

	st.Queries = StatusQueries{
		ErrorRatio5m:  s.ErrorRatioExpr(eventRateWindow).String(),
		ErrorRatio1h:  s.ErrorRatioExpr(time.Hour).String(),
		WindowSLI:     "1 - (" + s.ErrorRatioExpr(window).String() + ")",
		TotalRate:     totalR.String(),
		BadRate:       badR.String(),
		RecordedRatio: slo.RatioMetric(eventRateWindow) + `{slo="` + s.Name + `"}`,
	}
	return st, nil
}

func breakdown(ev evaluator, s slo.SLO, label string, rng time.Duration) (Breakdown, error) {
	bd := Breakdown{Label: label, Values: []BreakdownValue{}}
	badE, totalE := s.EventsExpr("increase", rng, label)
	totals, err := ev.vector(totalE)
	if err != nil {
		return bd, err
	}
	bads, err := ev.vector(badE)
	if err != nil {
		return bd, err
	}
	badBy := map[string]float64{}
	var allBad float64
	for _, smp := range bads {
		if finite(smp.F) {
			badBy[smp.Metric.Get(label)] = smp.F
			allBad += smp.F
		}
	}
	for _, smp := range totals {
		if !finite(smp.F) {
			continue
		}
		v := smp.Metric.Get(label)
		b := badBy[v]
		bv := BreakdownValue{
			Value: v, TotalEvents: smp.F, BadEvents: b,
			TotalRate: smp.F / rng.Seconds(), BadRate: b / rng.Seconds(),
		}
		if smp.F > 0 {
			bv.ErrorRatio = ptr(b / smp.F)
		}
		if allBad > 0 {
			bv.BadShare = ptr(b / allBad)
		}
		bd.Values = append(bd.Values, bv)
	}
	slices.SortFunc(bd.Values, func(a, b BreakdownValue) int {
		switch {
		case a.BadEvents != b.BadEvents:
			if a.BadEvents > b.BadEvents {
				return -1
			}
			return 1
		case a.TotalEvents != b.TotalEvents:
			if a.TotalEvents > b.TotalEvents {
				return -1
			}
			return 1
		}
		if a.Value < b.Value {
			return -1
		}
		return 1
	})
	if len(bd.Values) > breakdownLimit {
		bd.Values = bd.Values[:breakdownLimit]
	}
	return bd, nil
}

type evaluator struct {
	ctx    context.Context
	engine *promql.Engine
	q      storage.Queryable
	ts     time.Time
}

func (e evaluator) vector(expr parser.Expr) (promql.Vector, error) {
	qry, err := e.engine.NewInstantQuery(e.ctx, e.q, nil, expr.String(), e.ts)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	defer qry.Close()
	res := qry.Exec(e.ctx)
	if res.Err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, res.Err)
	}
	v, err := res.Vector()
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	// The result's memory belongs to the query, which is closed on return.
	return slices.Clone(v), nil
}

// scalar runs an expression that yields at most one series and reports
// whether it had a finite value.
func (e evaluator) scalar(expr parser.Expr) (float64, bool, error) {
	v, err := e.vector(expr)
	if err != nil {
		return 0, false, err
	}
	if len(v) == 0 || !finite(v[0].F) {
		return 0, false, nil
	}
	if len(v) > 1 {
		return 0, false, errors.New("BUG: status query returned several series: " + expr.String())
	}
	return v[0].F, true, nil
}

// firstSample finds the earliest sample of sel's series in [mint, maxt].
func firstSample(ctx context.Context, q storage.Queryable, sel *parser.VectorSelector, mint, maxt time.Time) (*time.Time, error) {
	qr, err := q.Querier(mint.UnixMilli(), maxt.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer qr.Close()
	hints := &storage.SelectHints{Start: mint.UnixMilli(), End: maxt.UnixMilli()}
	ss := qr.Select(ctx, false, hints, sel.LabelMatchers...)
	first := int64(math.MaxInt64)
	for ss.Next() {
		it := ss.At().Iterator(nil)
		if it.Seek(mint.UnixMilli()) != chunkenc.ValNone {
			if t := it.AtT(); t < first && t <= maxt.UnixMilli() {
				first = t
			}
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
	}
	if err := ss.Err(); err != nil {
		return nil, err
	}
	if first == math.MaxInt64 {
		return nil, nil
	}
	t := time.UnixMilli(first).UTC()
	return &t, nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func ptr[T any](v T) *T { return &v }

// round drops float noise (99.00000000000001) from percentages.
func round(f float64) float64 { return math.Round(f*1e9) / 1e9 }
