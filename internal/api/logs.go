package api

import (
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/query/logql"
	"github.com/trenchcoat/trenchcoat/internal/store"
)

type logqlParseError = logql.ParseError

// RegisterLogQueries serves the log query, group, volume and label
// endpoints over r, in the shapes of Loki's HTTP API where one exists.
func RegisterLogQueries(mux *http.ServeMux, r store.LogReader, lim QueryLimits) {
	h := &logQueries{r: r, lim: lim}
	mux.HandleFunc("GET /api/v1/logs/query", h.query)
	mux.HandleFunc("GET /api/v1/logs/groups", h.groups)
	mux.HandleFunc("GET /api/v1/logs/volume", h.volume)
	mux.HandleFunc("GET /api/v1/logs/labels", h.labels)
	mux.HandleFunc("GET /api/v1/logs/label/{name}/values", h.labelValues)
}

type logQueries struct {
	r   store.LogReader
	lim QueryLimits
}

func (h *logQueries) limits() logql.Limits {
	return logql.Limits{MaxSeries: h.lim.MaxSeries, MaxRows: h.lim.MaxRows}
}

func (h *logQueries) run(w http.ResponseWriter, r *http.Request, fn func() error) {
	if err := fn(); err != nil {
		h.lim.writeQueryError(w, r, err)
	}
}

func parseLogQL(r *http.Request) (*logql.Query, error) {
	q := r.FormValue("q")
	if q == "" {
		q = r.FormValue("query") // Loki's name for it
	}
	if q == "" {
		return nil, badParam("q is required")
	}
	return logql.Parse(q)
}

type lokiStream struct {
	Stream map[string]string `json:"stream"`
	Values [][2]string       `json:"values"`
}

func matrixOf(series []logql.Series) []matrixSeries {
	out := make([]matrixSeries, 0, len(series))
	for _, s := range series {
		ms := matrixSeries{Metric: s.Labels, Values: make([][2]any, 0, len(s.Points))}
		if ms.Metric == nil {
			ms.Metric = map[string]string{}
		}
		for _, p := range s.Points {
			ms.Values = append(ms.Values, [2]any{unixSeconds(p.T), promValue(p.V)})
		}
		out = append(out, ms)
	}
	return out
}

func (h *logQueries) query(w http.ResponseWriter, r *http.Request) {
	h.run(w, r, func() error {
		q, err := parseLogQL(r)
		if err != nil {
			return err
		}
		start, end, err := rangeParams(r)
		if err != nil {
			return err
		}
		ctx, cancel := h.lim.queryContext(r)
		defer cancel()
		if q.Metric != nil {
			step, err := stepParam(r, start, end)
			if err != nil {
				return err
			}
			series, err := logql.QueryMetric(ctx, h.r, q.Metric, logql.MetricRequest{Start: start, End: end, Step: step}, h.limits())
			if err != nil {
				return err
			}
			WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{
				"resultType": "matrix", "result": matrixOf(series), "stats": map[string]any{},
			}})
			return nil
		}
		limit, err := ParseLimit(r, 100, 10000)
		if err != nil {
			return badParam("%v", err)
		}
		backward := true
		switch d := r.FormValue("direction"); d {
		case "", "backward", "BACKWARD":
		case "forward", "FORWARD":
			backward = false
		default:
			return badParam("direction %q: want backward or forward", d)
		}
		streams, err := logql.QueryLogs(ctx, h.r, q.Log, logql.LogRequest{Start: start, End: end, Limit: limit, Backward: backward}, h.limits())
		if err != nil {
			return err
		}
		result := make([]lokiStream, 0, len(streams))
		for _, s := range streams {
			ls := lokiStream{Stream: s.Labels, Values: make([][2]string, 0, len(s.Entries))}
			for _, e := range s.Entries {
				ls.Values = append(ls.Values, [2]string{strconv.FormatInt(e.T, 10), e.Line})
			}
			result = append(result, ls)
		}
		WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{
			"resultType": "streams", "result": result, "stats": map[string]any{},
		}})
		return nil
	})
}

type logGroup struct {
	Name             string `json:"name"`
	Lines            int64  `json:"lines"`
	LastSeenUnixNano int64  `json:"lastSeenUnixNano,string"`
}

// groups lists log groups with their line counts and the time of their
// newest line in the range.
func (h *logQueries) groups(w http.ResponseWriter, r *http.Request) {
	h.run(w, r, func() error {
		start, end, err := rangeParams(r)
		if err != nil {
			return err
		}
		limit, err := ParseLimit(r, 1000, 10000)
		if err != nil {
			return badParam("%v", err)
		}
		ctx, cancel := h.lim.queryContext(r)
		defer cancel()
		field := store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicLogGroup}
		kcs, err := h.r.LogAttributeValues(ctx, field, nil, start, end, limit)
		if err != nil {
			return err
		}
		out := []logGroup{}
		for _, kc := range kcs {
			if kc.Key == "" {
				continue
			}
			g := logGroup{Name: kc.Key, Lines: kc.Count}
			// The store has no max(time) aggregation; the newest line of
			// the group is one backward read.
			filter := &store.Cond{Field: field, Op: store.OpEq, Value: store.Value{Kind: store.KindString, Str: kc.Key}}
			for row, err := range h.r.FindLogs(ctx, store.LogQuery{Start: start, End: end, Filter: filter, Limit: 1, Backward: true}) {
				if err != nil {
					return err
				}
				g.LastSeenUnixNano = row.Time
				break
			}
			out = append(out, g)
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		WriteJSON(w, http.StatusOK, map[string]any{"groups": out})
		return nil
	})
}

// volume counts lines by level over time, for the selector (and line
// filters) in q: a Prometheus matrix with a "level" label.
func (h *logQueries) volume(w http.ResponseWriter, r *http.Request) {
	h.run(w, r, func() error {
		q, err := parseLogQL(r)
		if err != nil {
			return err
		}
		if q.Log == nil {
			return badParam("q must be a log selector, not a metric query")
		}
		start, end, err := rangeParams(r)
		if err != nil {
			return err
		}
		step, err := stepParam(r, start, end)
		if err != nil {
			return err
		}
		ctx, cancel := h.lim.queryContext(r)
		defer cancel()
		series, err := logql.Volume(ctx, h.r, q.Log, start, end, step, h.limits())
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{
			"resultType": "matrix", "result": matrixOf(series),
		}})
		return nil
	})
}

// labelRange defaults to the last 6 hours, as Loki does for label queries.
func labelRange(r *http.Request) (time.Time, time.Time, error) {
	end, err := ParseTime(r.FormValue("end"), time.Now())
	if err != nil {
		return end, end, badParam("end: %v", err)
	}
	start, err := ParseTime(r.FormValue("start"), end.Add(-6*time.Hour))
	if err != nil {
		return start, end, badParam("start: %v", err)
	}
	if end.Before(start) {
		return start, end, badParam("end is before start")
	}
	return start, end, nil
}

func (h *logQueries) labels(w http.ResponseWriter, r *http.Request) {
	h.run(w, r, func() error {
		start, end, err := labelRange(r)
		if err != nil {
			return err
		}
		ctx, cancel := h.lim.queryContext(r)
		defer cancel()
		names, err := logql.LabelNames(ctx, h.r, start, end)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": names})
		return nil
	})
}

func (h *logQueries) labelValues(w http.ResponseWriter, r *http.Request) {
	h.run(w, r, func() error {
		start, end, err := labelRange(r)
		if err != nil {
			return err
		}
		limit, err := ParseLimit(r, 1000, 10000)
		if err != nil {
			return badParam("%v", err)
		}
		ctx, cancel := h.lim.queryContext(r)
		defer cancel()
		kcs, err := logql.LabelValues(ctx, h.r, r.PathValue("name"), start, end, limit)
		if err != nil {
			return err
		}
		vals := make([]string, 0, len(kcs))
		for _, kc := range kcs {
			vals = append(vals, kc.Key)
		}
		sort.Strings(vals) // Loki lists values in order
		WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": vals})
		return nil
	})
}
