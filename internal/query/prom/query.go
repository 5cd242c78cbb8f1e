package prom

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/util/annotations"
)

// maxPointsPerSeries is Prometheus' guard on range queries: enough for a
// week at 60 s or a year at 1 h.
const maxPointsPerSeries = 11000

func (a *API) query(w http.ResponseWriter, r *http.Request) {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		respondError(w, invalidParam(err, "limit"))
		return
	}
	ts, err := parseTimeParam(r, "time", a.now())
	if err != nil {
		respondError(w, invalidParam(err, "time"))
		return
	}
	ctx, cancel, apiErr := a.queryContext(r)
	if apiErr != nil {
		respondError(w, apiErr)
		return
	}
	defer cancel()
	opts, err := a.queryOpts(r)
	if err != nil {
		respondError(w, &apiError{errorBadData, err})
		return
	}
	qs := r.FormValue("query")
	qry, err := a.engine.NewInstantQuery(ctx, a.queryable, opts, qs, ts)
	if err != nil {
		respondError(w, constructionError(err))
		return
	}
	defer qry.Close()
	a.run(ctx, w, qry, qs, limit)
}

func (a *API) queryRange(w http.ResponseWriter, r *http.Request) {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		respondError(w, invalidParam(err, "limit"))
		return
	}
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		respondError(w, invalidParam(err, "start"))
		return
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		respondError(w, invalidParam(err, "end"))
		return
	}
	if end.Before(start) {
		respondError(w, invalidParam(errors.New("end timestamp must not be before start time"), "end"))
		return
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		respondError(w, invalidParam(err, "step"))
		return
	}
	if step <= 0 {
		respondError(w, invalidParam(errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"), "step"))
		return
	}
	if end.Sub(start)/step > maxPointsPerSeries {
		respondError(w, &apiError{errorBadData, errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")})
		return
	}
	ctx, cancel, apiErr := a.queryContext(r)
	if apiErr != nil {
		respondError(w, apiErr)
		return
	}
	defer cancel()
	opts, err := a.queryOpts(r)
	if err != nil {
		respondError(w, &apiError{errorBadData, err})
		return
	}
	qs := r.FormValue("query")
	qry, err := a.engine.NewRangeQuery(ctx, a.queryable, opts, qs, start, end, step)
	if err != nil {
		respondError(w, constructionError(err))
		return
	}
	defer qry.Close()
	a.run(ctx, w, qry, qs, limit)
}

// run executes qry and writes its result, truncated to limit series when
// limit > 0.
func (a *API) run(ctx context.Context, w http.ResponseWriter, qry promql.Query, qs string, limit int) {
	res := qry.Exec(ctx)
	if res.Err != nil {
		respondError(w, queryError(res.Err))
		return
	}
	warnings := res.Warnings
	if limit > 0 {
		truncated := false
		switch v := res.Value.(type) {
		case promql.Matrix:
			if len(v) > limit {
				res.Value, truncated = v[:limit], true
			}
		case promql.Vector:
			if len(v) > limit {
				res.Value, truncated = v[:limit], true
			}
		}
		if truncated {
			warnings = warnings.Add(errors.New("results truncated due to limit"))
		}
	}
	respond(w, queryData{typ: res.Value.Type(), result: res.Value}, warnings, qs)
}

// queryContext applies the request's "timeout" parameter, which can only
// shorten the engine's own timeout (the engine enforces that one).
func (a *API) queryContext(r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	ctx := r.Context()
	v := r.FormValue("timeout")
	if v == "" {
		return ctx, func() {}, nil
	}
	timeout, err := parseDuration(v)
	if err != nil {
		return nil, nil, invalidParam(err, "timeout")
	}
	if timeout <= 0 {
		return nil, nil, invalidParam(errors.New("timeout must be positive, got "+timeout.String()), "timeout")
	}
	ctx, cancel := context.WithDeadline(ctx, a.now().Add(timeout))
	return ctx, cancel, nil
}

func (*API) queryOpts(r *http.Request) (promql.QueryOpts, error) {
	var lookback time.Duration
	if s := r.FormValue("lookback_delta"); s != "" {
		d, err := parseDuration(s)
		if err != nil {
			return nil, errors.New("error parsing lookback delta duration: " + err.Error())
		}
		lookback = d
	}
	return promql.NewPrometheusQueryOpts(false, lookback, nil), nil
}

// constructionError maps an error from building a query: a parse error is
// bad data; running out of time or being canceled while waiting for a slot
// keep their own types.
func constructionError(err error) *apiError {
	var (
		eqt promql.ErrQueryTimeout
		eqc promql.ErrQueryCanceled
	)
	if errors.As(err, &eqt) || errors.As(err, &eqc) {
		return queryError(err)
	}
	return invalidParam(err, "query")
}

func (a *API) formatQuery(w http.ResponseWriter, r *http.Request) {
	expr, err := a.parser.ParseExpr(r.FormValue("query"))
	if err != nil {
		respondError(w, invalidParam(err, "query"))
		return
	}
	respond(w, expr.Pretty(0), nil, "")
}

// buildInfo answers /api/v1/status/buildinfo, which Grafana reads to pick
// the PromQL features it offers. The version is that of the Prometheus
// libraries inside (module v0.316 is Prometheus 3.16).
func (*API) buildInfo(w http.ResponseWriter, _ *http.Request) {
	respond(w, map[string]string{
		"version":   "3.16.0",
		"revision":  "",
		"branch":    "trenchcoat",
		"buildUser": "",
		"buildDate": "",
		"goVersion": goVersion(),
	}, annotations.Annotations(nil), "")
}
