package traceql

import (
	"context"
	"errors"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// SearchRequest is a search's range and sizes.
type SearchRequest struct {
	Start, End    time.Time
	Limit         int // traces returned; 0 means 20
	SpansPerTrace int // matched spans listed per trace; 0 means 3
}

// TraceResult is one trace found by a search.
type TraceResult struct {
	TraceID           string        `json:"traceID"`
	RootServiceName   string        `json:"rootServiceName"`
	RootSpanName      string        `json:"rootSpanName"`
	StartTimeUnixNano int64         `json:"startTimeUnixNano,string"`
	DurationMs        float64       `json:"durationMs"`
	SpanCount         int           `json:"spanCount"`
	ErrorCount        int           `json:"errorCount"`
	Matched           []MatchedSpan `json:"matched"`
	// MatchedCount is how many spans matched, of which Matched lists a few.
	MatchedCount int `json:"matchedCount"`
}

// MatchedSpan is a span that satisfied the query.
type MatchedSpan struct {
	SpanID            string  `json:"spanID"`
	Name              string  `json:"name"`
	ServiceName       string  `json:"serviceName"`
	StartTimeUnixNano int64   `json:"startTimeUnixNano,string"`
	DurationMs        float64 `json:"durationMs"`
	Status            string  `json:"status"`
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// Search finds traces with spans matching q (its metrics part, if any, is
// ignored), newest first: it picks the Limit traces whose latest matching
// span is newest, and lists them by trace start, newest first.
func Search(ctx context.Context, r store.TraceReader, q *Query, req SearchRequest, lim Limits) ([]TraceResult, error) {
	if req.Limit <= 0 {
		req.Limit = 20
	}
	if req.SpansPerTrace <= 0 {
		req.SpansPerTrace = 3
	}
	ev := &evaluator{r: r, start: req.Start, end: req.End, budget: rowBudget{max: lim.MaxRows}}
	if f, single := q.Spansets.(*SpansetFilter); single {
		c, t, exact := pushdown(f.Expr, true, pushAll)
		if t == triNone {
			return nil, nil
		}
		if exact {
			res, err := ev.searchRecent(ctx, c, req)
			if err == nil || !errors.Is(err, store.ErrUnsupported) {
				return res, err
			}
			ev.budget.n = 0 // start over on the general path
		}
	}
	cands, exact, err := ev.candidates(ctx, q.Spansets)
	if err != nil {
		return nil, err
	}
	exact = exact && !structural(q.Spansets)
	var out []TraceResult
	for _, id := range newest(cands) {
		if len(out) >= req.Limit {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, err := ev.fetchTrace(ctx, id)
		if err != nil {
			return nil, err
		}
		if t == nil || len(t.rows) == 0 {
			continue
		}
		var matched []store.SpanRow
		if exact {
			// The store answered the filters; trust it rather than re-judge.
			matched = dedupRows(cands[id].rows)
		} else {
			for _, i := range evalTrace(q.Spansets, t, req.Start.UnixNano(), req.End.UnixNano()) {
				matched = append(matched, t.rows[i])
			}
		}
		if len(matched) == 0 {
			continue
		}
		out = append(out, result(id, t, matched, len(matched), req.SpansPerTrace))
	}
	sortResults(out)
	return out, nil
}

// newest orders candidate traces by their latest matched span, newest first.
func newest(cands map[pcommon.TraceID]*candidate) []pcommon.TraceID {
	ids := make([]pcommon.TraceID, 0, len(cands))
	for id := range cands {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := cands[ids[i]].last, cands[ids[j]].last
		if a != b {
			return a > b
		}
		return string(ids[i][:]) < string(ids[j][:])
	})
	return ids
}

func sortResults(out []TraceResult) {
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartTimeUnixNano > out[j].StartTimeUnixNano })
}

func result(id pcommon.TraceID, t *traceData, matched []store.SpanRow, nMatched, spss int) TraceResult {
	res := TraceResult{
		TraceID:           id.String(),
		StartTimeUnixNano: t.start,
		DurationMs:        ms(t.end - t.start),
		SpanCount:         len(t.rows),
		ErrorCount:        t.errors,
		MatchedCount:      nMatched,
	}
	if t.root >= 0 {
		res.RootServiceName = t.rows[t.root].Service
		res.RootSpanName = t.rows[t.root].Name
	}
	for i, m := range matched {
		if i >= spss {
			break
		}
		res.Matched = append(res.Matched, MatchedSpan{
			SpanID: m.SpanID.String(), Name: m.Name, ServiceName: m.Service,
			StartTimeUnixNano: m.Start, DurationMs: ms(m.Duration), Status: StatusName(m.StatusCode),
		})
	}
	return res
}

// searchRecent answers a search whose filter the store runs exactly. It
// scans backward from End in growing windows and stops as soon as it has
// Limit traces: a trace seen in [s, End) has its latest match there, so
// any trace not yet seen is older than every one seen. The matched spans of
// the chosen traces are then read once over the whole range.
func (ev *evaluator) searchRecent(ctx context.Context, c *store.Cond, req SearchRequest) ([]TraceResult, error) {
	seen := map[pcommon.TraceID]*candidate{}
	w := max(req.End.Sub(req.Start)/64, time.Second)
	for e := req.End; e.After(req.Start) && len(seen) < req.Limit; w *= 2 {
		s := e.Add(-w)
		if s.Before(req.Start) {
			s = req.Start
		}
		for r, err := range ev.r.FindSpans(ctx, store.SpanQuery{Start: s, End: e, Filter: c}) {
			if err != nil {
				return nil, err
			}
			if err := ev.budget.take(1); err != nil {
				return nil, err
			}
			if cd, ok := seen[r.TraceID]; ok {
				cd.last = max(cd.last, r.Start)
			} else {
				seen[r.TraceID] = &candidate{last: r.Start}
			}
		}
		e = s
	}
	ids := newest(seen)
	if len(ids) > req.Limit {
		ids = ids[:req.Limit]
	}
	if len(ids) == 0 {
		return nil, nil
	}
	// The chosen traces' matched spans, over the whole range.
	or := make([]*store.Cond, len(ids))
	for i, id := range ids {
		or[i] = &store.Cond{Field: store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicTraceID}, Op: store.OpEq, Value: store.Value{Kind: store.KindString, Str: id.String()}}
	}
	filter := &store.Cond{And: []*store.Cond{c, {Or: or}}}
	if c == nil {
		filter = &store.Cond{Or: or}
	}
	chosen := map[pcommon.TraceID]*candidate{}
	for _, id := range ids {
		chosen[id] = &candidate{}
	}
	for r, err := range ev.r.FindSpans(ctx, store.SpanQuery{Start: req.Start, End: req.End, Filter: filter}) {
		if err != nil {
			return nil, err
		}
		if err := ev.budget.take(1); err != nil {
			return nil, err
		}
		cd, ok := chosen[r.TraceID]
		if !ok {
			continue
		}
		cd.n++
		cd.rows = append(cd.rows, r)
	}
	var out []TraceResult
	for _, id := range ids {
		t, err := ev.fetchTrace(ctx, id)
		if err != nil {
			return nil, err
		}
		matched := dedupRows(chosen[id].rows)
		if t == nil || len(t.rows) == 0 || len(matched) == 0 {
			continue
		}
		out = append(out, result(id, t, matched, len(matched), req.SpansPerTrace))
	}
	sortResults(out)
	return out, nil
}

// matchedSpans returns every span q selects in the range, with the trace of
// each when needed for trace-level grouping (nil otherwise).
func (ev *evaluator) matchedSpans(ctx context.Context, q *Query, needTraces bool, fn func(r *store.SpanRow, t *traceData) error) error {
	cands, exact, err := ev.candidates(ctx, q.Spansets)
	if err != nil {
		return err
	}
	if exact && !structural(q.Spansets) && !needTraces {
		for _, c := range cands {
			for _, r := range dedupRows(c.rows) {
				if err := fn(&r, nil); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for id := range cands {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := ev.fetchTrace(ctx, id)
		if err != nil {
			return err
		}
		if t == nil {
			continue
		}
		for _, i := range evalTrace(q.Spansets, t, ev.start.UnixNano(), ev.end.UnixNano()) {
			if err := fn(&t.rows[i], t); err != nil {
				return err
			}
		}
	}
	return nil
}

var errNoMetrics = errors.New("not a metrics query: add | rate(), | count_over_time(), | quantile_over_time(duration, q...) or | histogram_over_time(duration)")
