package traceql

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// MetricsRequest is a metrics query's range and step. Buckets are
// [Start+i*Step, Start+(i+1)*Step); each point is stamped with its
// bucket's start.
type MetricsRequest struct {
	Start, End time.Time
	Step       time.Duration
}

// Label is one name/value pair of a series.
type Label struct{ Name, Value string }

// Series is one time series of a metrics result. Points without data
// (a quantile of an empty bucket) are left out.
type Series struct {
	Labels []Label
	Points []Point
}

// Point is a value at a time (unix nanoseconds).
type Point struct {
	T int64
	V float64
}

// Buckets is the number of time buckets of req.
func (req MetricsRequest) Buckets() int {
	if req.Step <= 0 {
		return 1
	}
	n := int((req.End.Sub(req.Start) + req.Step - 1) / req.Step)
	return max(n, 1)
}

// Metrics evaluates a metrics query. Simple filters grouped by span-level
// attributes run as one store aggregation; anything else is computed here
// from the matching spans.
func Metrics(ctx context.Context, r store.TraceReader, q *Query, req MetricsRequest, lim Limits) ([]Series, error) {
	m := q.Metrics
	if m == nil {
		return nil, errNoMetrics
	}
	if req.Step <= 0 {
		return nil, errors.New("step must be positive")
	}
	if n := req.Buckets(); n > MaxPoints {
		return nil, fmt.Errorf("%w: %d points per series, more than %d; use a larger step", store.ErrLimit, n, MaxPoints)
	}
	fn := store.AggCount
	if m.Func == FuncQuantileOverTime || m.Func == FuncHistogramOverTime {
		fn = store.AggDurationHistogram
	}
	traceBy := false
	for _, a := range m.By {
		traceBy = traceBy || a.TraceLevel()
	}
	if f, ok := q.Spansets.(*SpansetFilter); ok && !traceBy {
		c, t, exact := pushdown(f.Expr, true, pushAll)
		if t == triNone {
			return nil, nil
		}
		if exact {
			groups, err := r.AggregateSpans(ctx, store.Aggregate{
				Start: req.Start, End: req.End, Step: req.Step, Filter: c,
				GroupBy: byFields(m.By), Func: fn, MaxSeries: lim.MaxSeries,
			})
			if err == nil {
				return toSeries(m, groups, req, lim)
			}
			if !errors.Is(err, store.ErrUnsupported) {
				return nil, err
			}
			// Fall through: compute from the rows.
		}
	}
	ev := &evaluator{r: r, start: req.Start, end: req.End, budget: rowBudget{max: lim.MaxRows}}
	groups, err := ev.aggregate(ctx, q, req, fn, traceBy, lim)
	if err != nil {
		return nil, err
	}
	return toSeries(m, groups, req, lim)
}

func byFields(by []Attribute) []store.Field {
	out := make([]store.Field, len(by))
	for i, a := range by {
		out[i] = a.Field()
	}
	return out
}

// aggregate is AggregateSpans done here, over the spans q selects.
func (ev *evaluator) aggregate(ctx context.Context, q *Query, req MetricsRequest, fn store.AggFunc, traceBy bool, lim Limits) ([]store.GroupSeries, error) {
	nb := req.Buckets()
	groups := map[string]*store.GroupSeries{}
	start := req.Start.UnixNano()
	err := ev.matchedSpans(ctx, q, traceBy, func(r *store.SpanRow, t *traceData) error {
		labels := make([]string, len(q.Metrics.By))
		for i, a := range q.Metrics.By {
			labels[i], _ = lookup(a, r, t)
		}
		key := strings.Join(labels, "\x00")
		g, ok := groups[key]
		if !ok {
			if lim.MaxSeries > 0 && len(groups) >= lim.MaxSeries {
				return fmt.Errorf("%w: more than %d series; group by fewer or coarser attributes", store.ErrLimit, lim.MaxSeries)
			}
			g = &store.GroupSeries{Labels: labels}
			if fn == store.AggDurationHistogram {
				g.Hist = make([][]uint64, nb)
				for i := range g.Hist {
					g.Hist[i] = make([]uint64, len(store.DurationBuckets)+1)
				}
			} else {
				g.Counts = make([]float64, nb)
			}
			groups[key] = g
		}
		b := int((r.Start - start) / int64(req.Step))
		if b < 0 || b >= nb {
			return nil
		}
		if fn == store.AggDurationHistogram {
			g.Hist[b][histBucket(r.Duration)]++
		} else {
			g.Counts[b]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]store.GroupSeries, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	return out, nil
}

func histBucket(d int64) int {
	return sort.Search(len(store.DurationBuckets), func(i int) bool { return d <= store.DurationBuckets[i] })
}

// Quantile estimates the q-quantile (in nanoseconds) of a duration
// histogram over store.DurationBuckets, interpolating linearly inside the
// bucket as Prometheus' histogram_quantile does. ok is false for an empty
// histogram. The +Inf bucket answers its lower bound.
func Quantile(h []uint64, q float64) (v float64, ok bool) {
	var total uint64
	for _, c := range h {
		total += c
	}
	if total == 0 {
		return 0, false
	}
	rank := q * float64(total)
	var cum float64
	for i, c := range h {
		if c == 0 {
			continue
		}
		lo := 0.0
		if i > 0 {
			lo = float64(store.DurationBuckets[i-1])
		}
		if cum+float64(c) >= rank {
			if i == len(store.DurationBuckets) {
				return lo, true
			}
			hi := float64(store.DurationBuckets[i])
			return lo + (hi-lo)*(rank-cum)/float64(c), true
		}
		cum += float64(c)
	}
	return float64(store.DurationBuckets[len(store.DurationBuckets)-1]), true
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func toSeries(m *MetricsFunc, groups []store.GroupSeries, req MetricsRequest, lim Limits) ([]Series, error) {
	nb := req.Buckets()
	ts := func(i int) int64 { return req.Start.Add(time.Duration(i) * req.Step).UnixNano() }
	labelsOf := func(g store.GroupSeries) []Label {
		var ls []Label
		for i, a := range m.By {
			if i < len(g.Labels) && g.Labels[i] != "" {
				ls = append(ls, Label{a.String(), g.Labels[i]})
			}
		}
		return ls
	}
	var out []Series
	for _, g := range groups {
		switch m.Func {
		case FuncRate, FuncCountOverTime:
			s := Series{Labels: labelsOf(g)}
			for i := 0; i < nb; i++ {
				v := 0.0
				if i < len(g.Counts) {
					v = g.Counts[i]
				}
				if m.Func == FuncRate {
					v /= req.Step.Seconds()
				}
				s.Points = append(s.Points, Point{ts(i), v})
			}
			out = append(out, s)
		case FuncQuantileOverTime:
			for _, q := range m.Quantiles {
				s := Series{Labels: append(labelsOf(g), Label{"p", fmtFloat(q)})}
				for i := 0; i < nb && i < len(g.Hist); i++ {
					if v, ok := Quantile(g.Hist[i], q); ok {
						s.Points = append(s.Points, Point{ts(i), v / 1e9})
					}
				}
				out = append(out, s)
			}
		case FuncHistogramOverTime:
			for b := 0; b <= len(store.DurationBuckets); b++ {
				var s *Series
				for i := 0; i < nb && i < len(g.Hist); i++ {
					if b >= len(g.Hist[i]) || g.Hist[i][b] == 0 {
						continue
					}
					if s == nil {
						le := "+Inf"
						if b < len(store.DurationBuckets) {
							le = fmtFloat(float64(store.DurationBuckets[b]) / 1e9)
						}
						s = &Series{Labels: append(labelsOf(g), Label{"__bucket", le})}
						for j := 0; j < nb; j++ {
							s.Points = append(s.Points, Point{ts(j), 0})
						}
					}
					s.Points[i].V = float64(g.Hist[i][b])
				}
				if s != nil {
					out = append(out, *s)
				}
			}
		}
		if lim.MaxSeries > 0 && len(out) > lim.MaxSeries {
			return nil, fmt.Errorf("%w: more than %d series; group by fewer or coarser attributes", store.ErrLimit, lim.MaxSeries)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return labelKey(out[i].Labels) < labelKey(out[j].Labels) })
	return out, nil
}

func labelKey(ls []Label) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Name)
		b.WriteByte(0)
		b.WriteString(l.Value)
		b.WriteByte(0)
	}
	return b.String()
}
