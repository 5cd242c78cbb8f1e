package logql

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// MetricRequest is a metric query's evaluation times: Start, Start+Step,
// ... up to End inclusive. The point at t covers log lines in [t-range, t).
type MetricRequest struct {
	Start, End time.Time
	Step       time.Duration
}

// Series is one time series; points without lines in their window are
// left out, as Loki does.
type Series struct {
	Labels map[string]string
	Points []Point
}

// Point is a value at a time (unix nanoseconds).
type Point struct {
	T int64
	V float64
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// bucketed is a series of values per store bucket before windowing.
type bucketed struct {
	labels map[string]string
	vals   []float64
}

// QueryMetric runs a metric query.
func QueryMetric(ctx context.Context, r store.LogReader, m *MetricExpr, req MetricRequest, lim Limits) ([]Series, error) {
	if req.Step <= 0 {
		return nil, errors.New("step must be positive")
	}
	npoints := int(req.End.Sub(req.Start)/req.Step) + 1
	if npoints > MaxPoints {
		return nil, fmt.Errorf("%w: %d points per series, more than %d; use a larger step", store.ErrLimit, npoints, MaxPoints)
	}
	re := m.RangeExpr()
	g := time.Duration(gcd(int64(re.Range), int64(req.Step)))
	origin := req.Start.Add(-re.Range)
	last := req.Start.Add(time.Duration(npoints-1) * req.Step)
	nb := int(last.Sub(origin) / g)
	rv, err := newResolver(ctx, r, origin, last)
	if err != nil {
		return nil, err
	}
	bytes := re.Func == FuncBytesOverTime || re.Func == FuncBytesRate
	var series []bucketed
	pushed := false
	if !re.Log.codeStages() && nb <= maxBuckets {
		series, pushed, err = aggregatePushed(ctx, r, rv, m, re, origin, last, g, bytes, lim)
		if err != nil {
			return nil, err
		}
	}
	if !pushed {
		series, err = aggregateRows(ctx, r, rv, re, origin, last, g, nb, bytes, lim)
		if err != nil {
			return nil, err
		}
	}
	// Windows: the point k sums buckets [k*step/g, (k*step+range)/g).
	stepB, rangeB := int(req.Step/g), int(re.Range/g)
	out := make([]Series, 0, len(series))
	for _, b := range series {
		s := Series{Labels: b.labels}
		for k := 0; k < npoints; k++ {
			v := 0.0
			for j := k * stepB; j < k*stepB+rangeB && j < len(b.vals); j++ {
				v += b.vals[j]
			}
			if v == 0 {
				continue
			}
			if re.Func == FuncRate || re.Func == FuncBytesRate {
				v /= re.Range.Seconds()
			}
			s.Points = append(s.Points, Point{T: req.Start.Add(time.Duration(k) * req.Step).UnixNano(), V: v})
		}
		if len(s.Points) > 0 {
			out = append(out, s)
		}
	}
	out = applyVector(m, out)
	if lim.MaxSeries > 0 && len(out) > lim.MaxSeries {
		return nil, seriesLimit(lim.MaxSeries)
	}
	sort.SliceStable(out, func(i, j int) bool { return labelsKey(out[i].Labels) < labelsKey(out[j].Labels) })
	return out, nil
}

// aggregatePushed asks the store to count. A single `sum by (labels)`
// around the range function groups by those labels in the store; anything
// else groups by stream. pushed is false when the store refused.
func aggregatePushed(ctx context.Context, r store.LogReader, rv *resolver, m, re *MetricExpr, origin, last time.Time, g time.Duration, bytes bool, lim Limits) ([]bucketed, bool, error) {
	c, exact := rv.filter(re.Log, pushAll)
	if !exact {
		return nil, false, nil
	}
	var fields []store.Field
	var names []string
	if m.Inner == re && m.Op == AggSum {
		for _, l := range m.By {
			fields = append(fields, rv.fields(l)[0])
			names = append(names, l)
		}
	} else {
		fields, names = rv.streamFields()
	}
	fn := store.AggCount
	if bytes {
		fn = store.AggBytes
	}
	groups, err := r.AggregateLogs(ctx, store.Aggregate{
		Start: origin, End: last, Step: g, Filter: c, GroupBy: fields, Func: fn, MaxSeries: lim.MaxSeries,
	})
	if errors.Is(err, store.ErrUnsupported) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := make([]bucketed, 0, len(groups))
	for _, gs := range groups {
		ls := map[string]string{}
		for i, v := range gs.Labels {
			if i < len(names) && v != "" {
				ls[names[i]] = v
			}
		}
		out = append(out, bucketed{labels: ls, vals: gs.Counts})
	}
	return mergeSame(out), true, nil
}

// mergeSame adds up series whose labels came out equal (two attribute keys
// that share a label name).
func mergeSame(in []bucketed) []bucketed {
	idx := map[string]int{}
	out := in[:0]
	for _, b := range in {
		k := labelsKey(b.labels)
		if i, ok := idx[k]; ok {
			for j := range b.vals {
				if j < len(out[i].vals) {
					out[i].vals[j] += b.vals[j]
				}
			}
			continue
		}
		idx[k] = len(out)
		out = append(out, b)
	}
	return out
}

// aggregateRows buckets the rows the pipeline keeps, here.
func aggregateRows(ctx context.Context, r store.LogReader, rv *resolver, re *MetricExpr, origin, last time.Time, g time.Duration, nb int, bytes bool, lim Limits) ([]bucketed, error) {
	budget := rowBudget{max: lim.MaxRows}
	type acc struct {
		labels map[string]string
		vals   map[int]float64
	}
	groups := map[string]*acc{}
	err := rv.findLogs(ctx, r, re.Log, store.LogQuery{Start: origin, End: last}, &budget, func(row *store.LogRow, ls map[string]string) (bool, error) {
		k := labelsKey(ls)
		a, ok := groups[k]
		if !ok {
			if lim.MaxSeries > 0 && len(groups) >= lim.MaxSeries {
				return false, seriesLimit(lim.MaxSeries)
			}
			a = &acc{labels: ls, vals: map[int]float64{}}
			groups[k] = a
		}
		b := int((row.Time - origin.UnixNano()) / int64(g))
		if bytes {
			a.vals[b] += float64(len(row.Body))
		} else {
			a.vals[b]++
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]bucketed, 0, len(groups))
	for _, k := range sortedKeys(groups) {
		a := groups[k]
		// Sparse to dense only over the buckets used: nb may be large.
		maxB := 0
		for b := range a.vals {
			maxB = max(maxB, b+1)
		}
		vals := make([]float64, min(maxB, nb))
		for b, v := range a.vals {
			if b < len(vals) {
				vals[b] = v
			}
		}
		out = append(out, bucketed{labels: a.labels, vals: vals})
	}
	return out, nil
}

// applyVector applies the vector aggregations around the range function,
// innermost first.
func applyVector(m *MetricExpr, in []Series) []Series {
	if m.Inner == nil {
		return in
	}
	in = applyVector(m.Inner, in)
	type group struct {
		labels map[string]string
		vals   map[int64][]float64
	}
	groups := map[string]*group{}
	for _, s := range in {
		ls := map[string]string{}
		for _, l := range m.By {
			if v := s.Labels[l]; v != "" {
				ls[l] = v
			}
		}
		k := labelsKey(ls)
		g, ok := groups[k]
		if !ok {
			g = &group{labels: ls, vals: map[int64][]float64{}}
			groups[k] = g
		}
		for _, p := range s.Points {
			g.vals[p.T] = append(g.vals[p.T], p.V)
		}
	}
	out := make([]Series, 0, len(groups))
	for _, k := range sortedKeys(groups) {
		g := groups[k]
		s := Series{Labels: g.labels}
		ts := make([]int64, 0, len(g.vals))
		for t := range g.vals {
			ts = append(ts, t)
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		for _, t := range ts {
			vs := g.vals[t]
			var v float64
			switch m.Op {
			case AggSum, AggAvg:
				for _, x := range vs {
					v += x
				}
				if m.Op == AggAvg {
					v /= float64(len(vs))
				}
			case AggCount:
				v = float64(len(vs))
			case AggMax:
				v = math.Inf(-1)
				for _, x := range vs {
					v = max(v, x)
				}
			case AggMin:
				v = math.Inf(1)
				for _, x := range vs {
					v = min(v, x)
				}
			}
			s.Points = append(s.Points, Point{T: t, V: v})
		}
		out = append(out, s)
	}
	return out
}

// Volume counts the lines e selects by level, in buckets of step from
// start (points stamped with their bucket's start; empty buckets left out).
func Volume(ctx context.Context, r store.LogReader, e *LogExpr, start, end time.Time, step time.Duration, lim Limits) ([]Series, error) {
	if step <= 0 {
		return nil, errors.New("step must be positive")
	}
	nb := int((end.Sub(start) + step - 1) / step)
	if nb > MaxPoints {
		return nil, fmt.Errorf("%w: %d points per series, more than %d; use a larger step", store.ErrLimit, nb, MaxPoints)
	}
	rv, err := newResolver(ctx, r, start, end)
	if err != nil {
		return nil, err
	}
	counts := map[string][]float64{}
	done := false
	if c, exact := rv.filter(e, pushAll); exact && !e.codeStages() {
		groups, err := r.AggregateLogs(ctx, store.Aggregate{
			Start: start, End: end, Step: step, Filter: c,
			GroupBy: []store.Field{{Scope: store.ScopeIntrinsic, Name: store.IntrinsicSeverity}},
			Func:    store.AggCount, MaxSeries: lim.MaxSeries,
		})
		switch {
		case err == nil:
			for _, g := range groups {
				counts[g.Labels[0]] = g.Counts
			}
			done = true
		case !errors.Is(err, store.ErrUnsupported):
			return nil, err
		}
	}
	if !done {
		budget := rowBudget{max: lim.MaxRows}
		err := rv.findLogs(ctx, r, e, store.LogQuery{Start: start, End: end}, &budget, func(row *store.LogRow, ls map[string]string) (bool, error) {
			lvl := ls[LabelLevel]
			c, ok := counts[lvl]
			if !ok {
				c = make([]float64, nb)
				counts[lvl] = c
			}
			if b := int((row.Time - start.UnixNano()) / int64(step)); b >= 0 && b < nb {
				c[b]++
			}
			return true, nil
		})
		if err != nil {
			return nil, err
		}
	}
	var out []Series
	for _, lvl := range sortedKeys(counts) {
		s := Series{Labels: map[string]string{LabelLevel: lvl}}
		if lvl == "" {
			s.Labels = map[string]string{}
		}
		for i, v := range counts[lvl] {
			if v != 0 {
				s.Points = append(s.Points, Point{T: start.Add(time.Duration(i) * step).UnixNano(), V: v})
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// LabelNames lists the stream label names seen in the range.
func LabelNames(ctx context.Context, r store.LogReader, start, end time.Time) ([]string, error) {
	rv, err := newResolver(ctx, r, start, end)
	if err != nil {
		return nil, err
	}
	names := []string{LabelLogGroup, LabelLevel}
	for l := range rv.keys {
		names = append(names, l)
	}
	sort.Strings(names)
	return names, nil
}

// LabelValues lists the values of a stream label, most frequent first.
func LabelValues(ctx context.Context, r store.LogReader, name string, start, end time.Time, limit int) ([]store.KeyCount, error) {
	rv, err := newResolver(ctx, r, start, end)
	if err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	for _, f := range rv.fields(name) {
		kcs, err := r.LogAttributeValues(ctx, f, nil, start, end, limit)
		if err != nil {
			return nil, err
		}
		for _, kc := range kcs {
			if kc.Key != "" {
				counts[kc.Key] += kc.Count
			}
		}
	}
	out := make([]store.KeyCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, store.KeyCount{Key: k, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
