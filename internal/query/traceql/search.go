package traceql

import (
	"context"
	"errors"
	"fmt"
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
			res, err := ev.searchRecent(ctx, f, c, req)
			if err == nil || !errors.Is(err, store.ErrUnsupported) {
				return res, err
			}
			ev.budget.n = 0 // start over on the general path
		}
	}
	for _, ok := range []pushable{pushAll, pushPlain, pushNone} {
		ev.budget.n = 0
		res, err := ev.searchWindows(ctx, q.Spansets, ok, req)
		if err == nil || !errors.Is(err, store.ErrUnsupported) {
			return res, err
		}
	}
	return nil, fmt.Errorf("BUG: the store refused a query without filters")
}

// returnedFilters are the filters whose spans a spanset expression returns:
// both sides of && and ||, the right side of > and >>.
func returnedFilters(x SpansetExpr) []*SpansetFilter {
	switch x := x.(type) {
	case *SpansetFilter:
		return []*SpansetFilter{x}
	case *SpansetOp:
		if x.Op == SpansetChild || x.Op == SpansetDescendant {
			return returnedFilters(x.R)
		}
		return append(returnedFilters(x.L), returnedFilters(x.R)...)
	}
	panic("BUG: unknown spanset expression")
}

// searchWindows answers any search. Every span a query returns matches one
// of its returned filters, so scanning those filters' spans backward from
// End in growing windows meets every trace whose latest returned span is in
// the scanned part; each trace met is read whole and evaluated here. Once
// Limit traces have their latest match at or after the window's start, no
// trace not yet met can rank above them.
func (ev *evaluator) searchWindows(ctx context.Context, x SpansetExpr, ok pushable, req SearchRequest) ([]TraceResult, error) {
	var or []*store.Cond
	all := false
	for _, f := range returnedFilters(x) {
		c, t, _ := pushdown(f.Expr, true, ok)
		switch t {
		case triAll:
			all = true
		case triCond:
			or = append(or, c)
		}
	}
	var filter *store.Cond
	switch {
	case all:
	case len(or) == 0:
		return nil, nil // nothing can match
	case len(or) == 1:
		filter = or[0]
	default:
		filter = &store.Cond{Or: or}
	}
	type evaluated struct {
		t       *traceData
		matched []int
		last    int64
	}
	seen := map[pcommon.TraceID]*evaluated{}
	w := max(req.End.Sub(req.Start)/64, time.Second)
	for e := req.End; e.After(req.Start); w *= 2 {
		s := e.Add(-w)
		if s.Before(req.Start) {
			s = req.Start
		}
		for r, err := range ev.r.FindSpans(ctx, store.SpanQuery{Start: s, End: e, Filter: filter}) {
			if err != nil {
				return nil, err
			}
			if err := ev.budget.take(1); err != nil {
				return nil, err
			}
			if _, ok := seen[r.TraceID]; ok {
				continue
			}
			t, err := ev.fetchTrace(ctx, r.TraceID)
			if err != nil {
				return nil, err
			}
			ed := &evaluated{t: t}
			seen[r.TraceID] = ed
			if t == nil {
				continue
			}
			ed.matched = evalTrace(x, t, req.Start.UnixNano(), req.End.UnixNano())
			for _, i := range ed.matched {
				ed.last = max(ed.last, t.rows[i].Start)
			}
		}
		e = s
		n := 0
		for _, ed := range seen {
			if len(ed.matched) > 0 && ed.last >= s.UnixNano() {
				n++
			}
		}
		if n >= req.Limit {
			break
		}
	}
	ids := make([]pcommon.TraceID, 0, len(seen))
	for id, ed := range seen {
		if len(ed.matched) > 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := seen[ids[i]].last, seen[ids[j]].last
		if a != b {
			return a > b
		}
		return string(ids[i][:]) < string(ids[j][:])
	})
	if len(ids) > req.Limit {
		ids = ids[:req.Limit]
	}
	out := make([]TraceResult, 0, len(ids))
	for _, id := range ids {
		ed := seen[id]
		m := make([]store.SpanRow, len(ed.matched))
		for i, j := range ed.matched {
			m[i] = ed.t.rows[j]
		}
		out = append(out, result(id, ed.t, m, len(m), req.SpansPerTrace))
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
// any trace not yet seen is older than every one seen.
func (ev *evaluator) searchRecent(ctx context.Context, f *SpansetFilter, c *store.Cond, req SearchRequest) ([]TraceResult, error) {
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
	// List each chosen trace's matched spans by evaluating the filter over
	// the whole trace, which GetTrace reads anyway. Asking the store again
	// (filter AND traceID in ids) gave the same answer in the semantics
	// tests at several times the cost.
	var out []TraceResult
	for _, id := range ids {
		t, err := ev.fetchTrace(ctx, id)
		if err != nil {
			return nil, err
		}
		if t == nil || len(t.rows) == 0 {
			continue
		}
		var m []store.SpanRow
		for _, i := range evalTrace(f, t, req.Start.UnixNano(), req.End.UnixNano()) {
			m = append(m, t.rows[i])
		}
		out = append(out, result(id, t, m, len(m), req.SpansPerTrace))
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
