package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/query/traceql"
	"github.com/trenchcoat/trenchcoat/internal/store"
)

// QueryLimits bound each trace or log query. Zero means no limit.
type QueryLimits struct {
	MaxSeries int           // series (or log streams) in one answer
	MaxRows   int           // rows one query may read from the store
	Timeout   time.Duration // wall time of one query
}

// queryContext applies the time limit to a request's context.
func (lim QueryLimits) queryContext(r *http.Request) (context.Context, context.CancelFunc) {
	if lim.Timeout > 0 {
		return context.WithTimeout(r.Context(), lim.Timeout)
	}
	return context.WithCancel(r.Context())
}

// writeQueryError answers a failed query: syntax and parameter errors are
// 400, our own time limit is a limit (422) rather than a server timeout,
// everything else goes by the store's error kinds.
func (lim QueryLimits) writeQueryError(w http.ResponseWriter, r *http.Request, err error) {
	var tpe *traceql.ParseError
	var lpe *logqlParseError
	switch {
	case errors.As(err, &tpe), errors.As(err, &lpe), errors.Is(err, errBadParam):
		WriteError(w, http.StatusBadRequest, ErrBadData, err)
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil && lim.Timeout > 0:
		WriteStoreError(w, fmt.Errorf("%w: the query ran longer than %s; narrow the time range or the filter", store.ErrLimit, lim.Timeout))
	default:
		WriteStoreError(w, err)
	}
}

// errBadParam marks errors in request parameters (400).
var errBadParam = errors.New("bad parameter")

func badParam(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadParam, fmt.Sprintf(format, args...))
}

// RegisterTraceQueries serves the trace search, aggregation and attribute
// endpoints over r.
func RegisterTraceQueries(mux *http.ServeMux, r store.TraceReader, lim QueryLimits) {
	h := &traceQueries{r: r, lim: lim}
	mux.HandleFunc("GET /api/v1/traces/search", h.search)
	mux.HandleFunc("GET /api/v1/traces/aggregate", h.aggregate)
	mux.HandleFunc("GET /api/v1/traces/attributes", h.attributes)
	mux.HandleFunc("GET /api/v1/traces/attributes/{key}/values", h.values)
}

type traceQueries struct {
	r   store.TraceReader
	lim QueryLimits
}

func (h *traceQueries) limits() traceql.Limits {
	return traceql.Limits{MaxSeries: h.lim.MaxSeries, MaxRows: h.lim.MaxRows}
}

// parseQuery reads q; an empty q means every span.
func parseTraceQL(r *http.Request) (*traceql.Query, error) {
	q := r.FormValue("q")
	if q == "" {
		q = "{}"
	}
	return traceql.Parse(q)
}

func rangeParams(r *http.Request) (time.Time, time.Time, error) {
	start, end, err := ParseRange(r)
	if err != nil {
		return start, end, badParam("%v", err)
	}
	return start, end, nil
}

func (h *traceQueries) search(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		q, err := parseTraceQL(r)
		if err != nil {
			return err
		}
		start, end, err := rangeParams(r)
		if err != nil {
			return err
		}
		limit, err := ParseLimit(r, 20, 1000)
		if err != nil {
			return badParam("%v", err)
		}
		spss := 3
		if s := r.FormValue("spss"); s != "" {
			if spss, err = strconv.Atoi(s); err != nil || spss < 1 {
				return badParam("spss %q must be a positive integer", s)
			}
		}
		ctx, cancel := h.lim.queryContext(r)
		defer cancel()
		res, err := traceql.Search(ctx, h.r, q, traceql.SearchRequest{Start: start, End: end, Limit: limit, SpansPerTrace: spss}, h.limits())
		if err != nil {
			return err
		}
		for i := range res {
			if res[i].Matched == nil {
				res[i].Matched = []traceql.MatchedSpan{}
			}
		}
		if res == nil {
			res = []traceql.TraceResult{}
		}
		WriteJSON(w, http.StatusOK, map[string]any{"traces": res})
		return nil
	}()
	if err != nil {
		h.lim.writeQueryError(w, r, err)
	}
}

// defaultStep picks a step giving about 120 points, at least 1 s, whole seconds.
func defaultStep(start, end time.Time) time.Duration {
	s := end.Sub(start) / 120
	s = s.Truncate(time.Second)
	return max(s, time.Second)
}

func stepParam(r *http.Request, start, end time.Time) (time.Duration, error) {
	step, err := ParseDuration(r.FormValue("step"), defaultStep(start, end))
	if err != nil {
		return 0, badParam("step: %v", err)
	}
	return step, nil
}

// promValue formats a sample value as the Prometheus API does.
func promValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// unixSeconds is a Prometheus API timestamp: seconds, fractional.
func unixSeconds(ns int64) float64 { return float64(ns) / 1e9 }

type matrixSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"`
}

func (h *traceQueries) aggregate(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		q, err := parseTraceQL(r)
		if err != nil {
			return err
		}
		if q.Metrics == nil {
			return badParam("q must be a metrics query: add | rate(), | count_over_time(), | quantile_over_time(duration, 0.95) or | histogram_over_time(duration)")
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
		series, err := traceql.Metrics(ctx, h.r, q, traceql.MetricsRequest{Start: start, End: end, Step: step}, h.limits())
		if err != nil {
			return err
		}
		result := make([]matrixSeries, 0, len(series))
		for _, s := range series {
			ms := matrixSeries{Metric: map[string]string{}, Values: make([][2]any, 0, len(s.Points))}
			for _, l := range s.Labels {
				ms.Metric[l.Name] = l.Value
			}
			for _, p := range s.Points {
				ms.Values = append(ms.Values, [2]any{unixSeconds(p.T), promValue(p.V)})
			}
			result = append(result, ms)
		}
		WriteJSON(w, http.StatusOK, map[string]any{
			"status": "success",
			"data":   map[string]any{"resultType": "matrix", "result": result},
		})
		return nil
	}()
	if err != nil {
		h.lim.writeQueryError(w, r, err)
	}
}

type attrKey struct {
	Scope string `json:"scope"`
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

var scopeNames = map[string]store.Scope{"resource": store.ScopeResource, "span": store.ScopeSpan, "intrinsic": store.ScopeIntrinsic}

// traceIntrinsics are listed for scope=intrinsic; the trace-level ones are
// computed, so the store has no count for them.
var traceIntrinsics = []string{
	store.IntrinsicName, store.IntrinsicStatus, store.IntrinsicStatusMessage, store.IntrinsicKind, store.IntrinsicDuration,
	traceql.IntrinsicRootName, traceql.IntrinsicRootServiceName, traceql.IntrinsicTraceDuration,
}

func (h *traceQueries) attributes(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		start, end, err := rangeParams(r)
		if err != nil {
			return err
		}
		scopes := []string{"resource", "span", "intrinsic"}
		if s := r.FormValue("scope"); s != "" {
			if _, ok := scopeNames[s]; !ok {
				return badParam("scope %q: want resource, span or intrinsic", s)
			}
			scopes = []string{s}
		}
		ctx, cancel := h.lim.queryContext(r)
		defer cancel()
		out := []attrKey{}
		for _, sn := range scopes {
			kcs, err := h.r.SpanAttributeKeys(ctx, scopeNames[sn], start, end)
			if sn == "intrinsic" {
				// Every intrinsic exists on every span; list them all, with
				// the store's counts when it has them.
				counts := map[string]int64{}
				if err == nil {
					for _, kc := range kcs {
						counts[kc.Key] = kc.Count
					}
				} else if !errors.Is(err, store.ErrUnsupported) {
					return err
				}
				for _, k := range traceIntrinsics {
					out = append(out, attrKey{Scope: sn, Key: k, Count: counts[k]})
				}
				continue
			}
			if err != nil {
				return err
			}
			sort.SliceStable(kcs, func(i, j int) bool {
				if kcs[i].Count != kcs[j].Count {
					return kcs[i].Count > kcs[j].Count
				}
				return kcs[i].Key < kcs[j].Key
			})
			for _, kc := range kcs {
				out = append(out, attrKey{Scope: sn, Key: kc.Key, Count: kc.Count})
			}
		}
		WriteJSON(w, http.StatusOK, map[string]any{"attributes": out})
		return nil
	}()
	if err != nil {
		h.lim.writeQueryError(w, r, err)
	}
}

type valueCount struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

func (h *traceQueries) values(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		a, err := traceql.ParseAttribute(r.PathValue("key"))
		if err != nil {
			return badParam("key: %v", err)
		}
		if a.TraceLevel() {
			return badParam("key %s is computed per trace; values are listed for span fields only", a)
		}
		q, err := parseTraceQL(r)
		if err != nil {
			return err
		}
		filter, none, _, err := traceql.FilterCond(q)
		if err != nil {
			return badParam("q: %v", err)
		}
		start, end, err := rangeParams(r)
		if err != nil {
			return err
		}
		limit, err := ParseLimit(r, 100, 10000)
		if err != nil {
			return badParam("%v", err)
		}
		out := []valueCount{}
		if !none {
			ctx, cancel := h.lim.queryContext(r)
			defer cancel()
			kcs, err := h.r.SpanAttributeValues(ctx, a.Field(), filter, start, end, limit)
			if err != nil {
				return err
			}
			for _, kc := range kcs {
				out = append(out, valueCount{Value: kc.Key, Count: kc.Count})
			}
		}
		WriteJSON(w, http.StatusOK, map[string]any{"values": out})
		return nil
	}()
	if err != nil {
		h.lim.writeQueryError(w, r, err)
	}
}
