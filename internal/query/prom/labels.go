package prom

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

func goVersion() string { return runtime.Version() }

// checkContextEvery is how many series the series handler reads between
// looks at the request's context.
const checkContextEvery = 128

func (a *API) series(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		respondError(w, &apiError{errorBadData, fmt.Errorf("error parsing form values: %w", err)})
		return
	}
	if len(r.Form["match[]"]) == 0 {
		respondError(w, &apiError{errorBadData, errors.New("no match[] parameter provided")})
		return
	}
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		respondError(w, invalidParam(err, "limit"))
		return
	}
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		respondError(w, invalidParam(err, "start"))
		return
	}
	end, err := parseTimeParam(r, "end", maxTime)
	if err != nil {
		respondError(w, invalidParam(err, "end"))
		return
	}
	sets, err := a.parseMatchers(r.Form["match[]"])
	if err != nil {
		respondError(w, invalidParam(err, "match[]"))
		return
	}
	q, err := a.queryable.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	if err != nil {
		respondError(w, queryError(err))
		return
	}
	defer q.Close()

	hints := &storage.SelectHints{
		Start: timestamp.FromTime(start),
		End:   timestamp.FromTime(end),
		Func:  "series", // no such function: tells the storage no samples are needed
		Limit: hintLimit(limit),
	}
	var set storage.SeriesSet
	if len(sets) > 1 {
		ss := make([]storage.SeriesSet, 0, len(sets))
		for _, ms := range sets {
			// Sorted, so that the merge can drop duplicates.
			ss = append(ss, q.Select(ctx, true, hints, ms...))
		}
		set = storage.NewMergeSeriesSet(ss, 0, storage.ChainedSeriesMerge)
	} else {
		set = q.Select(ctx, false, hints, sets[0]...)
	}
	out := []labels.Labels{}
	var warnings annotations.Annotations
	for i := 1; set.Next(); i++ {
		if i%checkContextEvery == 0 {
			if err := ctx.Err(); err != nil {
				respondError(w, queryError(err))
				return
			}
		}
		out = append(out, set.At().Labels())
		if limit > 0 && len(out) > limit {
			out = out[:limit]
			warnings = warnings.Add(errors.New("results truncated due to limit"))
			break
		}
	}
	if err := set.Err(); err != nil {
		respondError(w, queryError(err))
		return
	}
	warnings.Merge(set.Warnings())
	respond(w, out, warnings, "")
}

func (a *API) labelNames(w http.ResponseWriter, r *http.Request) {
	a.labelsOrValues(w, r, "")
}

func (a *API) labelValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if strings.HasPrefix(name, "U__") {
		// Prometheus' escaping for UTF-8 label names in a URL path.
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if !model.UTF8Validation.IsValidLabelName(name) {
		respondError(w, &apiError{errorBadData, fmt.Errorf("invalid label name: %q", name)})
		return
	}
	a.labelsOrValues(w, r, name)
}

// labelsOrValues serves /api/v1/labels (name == "") and
// /api/v1/label/{name}/values: the same parameters, the same merging of
// several match[] sets.
func (a *API) labelsOrValues(w http.ResponseWriter, r *http.Request, name string) {
	ctx := r.Context()
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		respondError(w, invalidParam(err, "limit"))
		return
	}
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		respondError(w, invalidParam(err, "start"))
		return
	}
	end, err := parseTimeParam(r, "end", maxTime)
	if err != nil {
		respondError(w, invalidParam(err, "end"))
		return
	}
	_ = r.ParseForm() // FormValue above already parsed it; errors there surface as empty values
	sets, err := a.parseMatchers(r.Form["match[]"])
	if err != nil {
		respondError(w, &apiError{errorBadData, err})
		return
	}
	q, err := a.queryable.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	if err != nil {
		respondError(w, queryError(err))
		return
	}
	defer q.Close()
	hints := &storage.LabelHints{Limit: hintLimit(limit)}

	get := func(ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		if name == "" {
			return q.LabelNames(ctx, hints, ms...)
		}
		return q.LabelValues(ctx, name, hints, ms...)
	}
	var (
		vals     []string
		warnings annotations.Annotations
	)
	if len(sets) > 1 {
		seen := make(map[string]struct{})
		for _, ms := range sets {
			vs, ws, err := get(ms)
			if err != nil {
				respondError(w, &apiError{errorExec, err})
				return
			}
			warnings.Merge(ws)
			for _, v := range vs {
				seen[v] = struct{}{}
			}
		}
		vals = make([]string, 0, len(seen))
		for v := range seen {
			vals = append(vals, v)
		}
	} else {
		var ms []*labels.Matcher
		if len(sets) == 1 {
			ms = sets[0]
		}
		vals, warnings, err = get(ms)
		if err != nil {
			respondError(w, &apiError{errorExec, err})
			return
		}
	}
	if vals == nil {
		vals = []string{}
	}
	slices.Sort(vals)
	if limit > 0 && len(vals) > limit {
		vals = vals[:limit]
		warnings = warnings.Add(errors.New("results truncated due to limit"))
	}
	respond(w, vals, warnings, "")
}

func (a *API) metadata(w http.ResponseWriter, r *http.Request) {
	limit := -1
	if s := r.FormValue("limit"); s != "" {
		var err error
		if limit, err = strconv.Atoi(s); err != nil {
			respondError(w, &apiError{errorBadData, errors.New("limit must be a number")})
			return
		}
	}
	limitPerMetric := -1
	if s := r.FormValue("limit_per_metric"); s != "" {
		var err error
		if limitPerMetric, err = strconv.Atoi(s); err != nil {
			respondError(w, &apiError{errorBadData, errors.New("limit_per_metric must be a number")})
			return
		}
	}
	res := map[string][]metadata.Metadata{}
	if a.cfg.Metadata != nil && limit != 0 {
		res = a.cfg.Metadata.Metadata(r.FormValue("metric"), max(limit, 0))
		if limitPerMetric > 0 {
			for k, v := range res {
				if len(v) > limitPerMetric {
					res[k] = v[:limitPerMetric]
				}
			}
		}
	}
	respond(w, res, nil, "")
}
