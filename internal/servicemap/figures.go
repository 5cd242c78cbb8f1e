package servicemap

import (
	"context"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/trenchcoat/trenchcoat/internal/spanmetrics"
)

// Span kinds fall in three classes. A service's requests are its SERVER
// and CONSUMER spans (what it was asked to do); a service without any
// (a batch job, a cron) is measured by its INTERNAL/UNSPECIFIED spans,
// which are then its roots. CLIENT and PRODUCER spans are calls it makes,
// never its own requests.
const (
	clsEntry = iota
	clsFallback
	clsOther
	nClasses
	clsAll = -1 // no selection: every span (operations)
)

func kindClass(k string) int {
	switch k {
	case "SPAN_KIND_SERVER", "SPAN_KIND_CONSUMER":
		return clsEntry
	case "SPAN_KIND_INTERNAL", "SPAN_KIND_UNSPECIFIED", "":
		return clsFallback
	}
	return clsOther
}

const errorStatus = "STATUS_CODE_ERROR"

type point struct {
	calls, errs [nClasses]float64
	buckets     [nClasses]map[float64]float64
}

// group is one combination of group-by label values, with one point per
// evaluation step.
type group struct {
	labels []string
	points []point
}

// groups are collect's results by joined label values.
type groups map[string]*group

// get returns the group k, or one without calls: a sparkline always has
// its points, null where nothing was seen.
func (gs groups) get(k string, times []int64) *group {
	if g := gs[k]; g != nil {
		return g
	}
	return &group{points: make([]point, len(times))}
}

// class picks the kind class of a group: entry spans when it has any in
// the range, else internal ones, else all.
func (g *group) class() int {
	var sum [nClasses]float64
	for _, p := range g.points {
		for c := range nClasses {
			sum[c] += p.calls[c]
		}
	}
	switch {
	case sum[clsEntry] > 0:
		return clsEntry
	case sum[clsFallback] > 0:
		return clsFallback
	}
	return clsAll
}

// figures computes point i over window w for the class cls.
func (g *group) figures(i, cls int, w time.Duration) Figures {
	p := &g.points[i]
	var calls, errs float64
	b := map[float64]float64{}
	for c := range nClasses {
		if cls != clsAll && c != cls {
			continue
		}
		calls += p.calls[c]
		errs += p.errs[c]
		for ub, n := range p.buckets[c] {
			b[ub] += n
		}
	}
	f := Figures{Rate: Num(calls / w.Seconds()), Calls: Num(calls), Errors: Num(errs), ErrorRatio: ratio(errs, calls)}
	if calls > 0 {
		f.P50, f.P95, f.P99 = quantile(0.5, b), quantile(0.95, b), quantile(0.99, b)
	} else {
		f.P50, f.P95, f.P99 = Num(math.NaN()), Num(math.NaN()), Num(math.NaN())
	}
	return f
}

func (g *group) sparkline(times []int64, cls int, w time.Duration) *Sparkline {
	s := &Sparkline{Times: times}
	for i := range g.points {
		f := g.figures(i, cls, w)
		s.Rate = append(s.Rate, f.Rate)
		s.ErrorRatio = append(s.ErrorRatio, f.ErrorRatio)
		s.P50 = append(s.P50, f.P50)
		s.P95 = append(s.P95, f.P95)
		s.P99 = append(s.P99, f.P99)
	}
	return s
}

// collect evaluates the span-metrics increases over w, grouped by the
// labels by, at start, start+step, ... end. It runs two range queries:
// calls by (by, span_kind, status_code) and latency buckets by (by,
// span_kind, le); kinds and statuses are folded here, so that the kind
// class can be picked per group.
func (m *Map) collect(ctx context.Context, by []string, w time.Duration, start, end time.Time, step time.Duration, ms ...*labels.Matcher) (groups, []int64, error) {
	startMs, stepMs := start.UnixMilli(), step.Milliseconds()
	n := int(end.Sub(start)/step) + 1
	times := make([]int64, n)
	for i := range times {
		times[i] = startMs + int64(i)*stepMs
	}
	out := groups{}
	get := func(ls labels.Labels) *group {
		vals := make([]string, len(by))
		for i, l := range by {
			vals[i] = ls.Get(l)
		}
		k := strings.Join(vals, "\xff")
		g := out[k]
		if g == nil {
			g = &group{labels: vals, points: make([]point, n)}
			out[k] = g
		}
		return g
	}
	idx := func(t int64) int {
		i := int((t - startMs) / max(stepMs, 1))
		if i < 0 || i >= n {
			return -1
		}
		return i
	}

	calls, err := m.matrix(ctx, sumIncrease(spanmetrics.MetricCalls, w, append(by[:len(by):len(by)], "span_kind", "status_code"), ms...), start, end, step)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range calls {
		g := get(s.Metric)
		c := kindClass(s.Metric.Get("span_kind"))
		isErr := s.Metric.Get("status_code") == errorStatus
		for _, fp := range s.Floats {
			i := idx(fp.T)
			if i < 0 {
				continue
			}
			g.points[i].calls[c] += fp.F
			if isErr {
				g.points[i].errs[c] += fp.F
			}
		}
	}
	buckets, err := m.matrix(ctx, sumIncrease(spanmetrics.MetricLatency+"_bucket", w, append(by[:len(by):len(by)], "span_kind", "le"), ms...), start, end, step)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range buckets {
		ub, err := strconv.ParseFloat(s.Metric.Get("le"), 64)
		if err != nil {
			continue // not a bucket series; nothing to interpolate with
		}
		g := get(s.Metric)
		c := kindClass(s.Metric.Get("span_kind"))
		for _, fp := range s.Floats {
			i := idx(fp.T)
			if i < 0 {
				continue
			}
			if g.points[i].buckets[c] == nil {
				g.points[i].buckets[c] = map[float64]float64{}
			}
			g.points[i].buckets[c][ub] += fp.F
		}
	}
	return out, times, nil
}

// totals is collect at the range's end over the whole range.
func (m *Map) totals(ctx context.Context, rng Range, by []string, ms ...*labels.Matcher) (groups, error) {
	g, _, err := m.collect(ctx, by, rng.window(), rng.End, rng.End, time.Second, ms...)
	return g, err
}

// sparkWindow is the window of each sparkline point: the step, but at
// least four sample intervals, so every point covers two samples.
func (m *Map) sparkWindow(rng Range) time.Duration {
	return max(rng.step(), 4*m.cfg.Interval)
}

func (m *Map) sparklines(ctx context.Context, rng Range, by []string, ms ...*labels.Matcher) (groups, []int64, error) {
	return m.collect(ctx, by, m.sparkWindow(rng), rng.Start, rng.End, rng.step(), ms...)
}
