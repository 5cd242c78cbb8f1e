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
// ignored), newest first. The order is by the earliest matching span, which
// is the trace's start whenever the root matches.
func Search(ctx context.Context, r store.TraceReader, q *Query, req SearchRequest, lim Limits) ([]TraceResult, error) {
	if req.Limit <= 0 {
		req.Limit = 20
	}
	if req.SpansPerTrace <= 0 {
		req.SpansPerTrace = 3
	}
	ev := &evaluator{r: r, start: req.Start, end: req.End, budget: rowBudget{max: lim.MaxRows}}
	cands, exact, err := ev.candidates(ctx, q.Spansets, true)
	if err != nil {
		return nil, err
	}
	exact = exact && !structural(q.Spansets)
	ids := make([]pcommon.TraceID, 0, len(cands))
	for id := range cands {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := cands[ids[i]].first, cands[ids[j]].first
		if a != b {
			return a > b
		}
		return string(ids[i][:]) < string(ids[j][:])
	})
	var out []TraceResult
	for _, id := range ids {
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
		res := TraceResult{
			TraceID:           id.String(),
			StartTimeUnixNano: t.start,
			DurationMs:        ms(t.end - t.start),
			SpanCount:         len(t.rows),
			ErrorCount:        t.errors,
			MatchedCount:      len(matched),
		}
		if t.root >= 0 {
			res.RootServiceName = t.rows[t.root].Service
			res.RootSpanName = t.rows[t.root].Name
		}
		for i, m := range matched {
			if i >= req.SpansPerTrace {
				break
			}
			res.Matched = append(res.Matched, MatchedSpan{
				SpanID: m.SpanID.String(), Name: m.Name, ServiceName: m.Service,
				StartTimeUnixNano: m.Start, DurationMs: ms(m.Duration), Status: StatusName(m.StatusCode),
			})
		}
		out = append(out, res)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartTimeUnixNano > out[j].StartTimeUnixNano })
	return out, nil
}

// matchedSpans returns every span q selects in the range, with the trace of
// each when needed for trace-level grouping (nil otherwise).
func (ev *evaluator) matchedSpans(ctx context.Context, q *Query, needTraces bool, fn func(r *store.SpanRow, t *traceData) error) error {
	cands, exact, err := ev.candidates(ctx, q.Spansets, true)
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
