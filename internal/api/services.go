package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/servicemap"
)

// maxSparkPoints bounds the points of a sparkline, as Prometheus bounds a
// range query's (11,000).
const maxSparkPoints = 11000

// RegisterServices serves the service endpoints:
//
//	GET /api/v1/services?start=&end=&step=           inventory, erroring services first
//	GET /api/v1/services/{name}?start=&end=&step=&groupBy=   one service's overview; 404 if unknown
//	GET /api/v1/service-graph?start=&end=            nodes and edges
//
// start and end default to the last hour; step to (end-start)/30.
func RegisterServices(mux *http.ServeMux, sm *servicemap.Map) {
	mux.HandleFunc("GET /api/v1/services", func(w http.ResponseWriter, r *http.Request) {
		rng, ok := parseServiceRange(w, r)
		if !ok {
			return
		}
		out, err := sm.Services(r.Context(), rng)
		if err != nil {
			WriteStoreError(w, err)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": out})
	})
	mux.HandleFunc("GET /api/v1/services/{name}", func(w http.ResponseWriter, r *http.Request) {
		rng, ok := parseServiceRange(w, r)
		if !ok {
			return
		}
		out, err := sm.Service(r.Context(), r.PathValue("name"), rng, r.FormValue("groupBy"))
		if errors.Is(err, servicemap.ErrBadGroupBy) {
			WriteError(w, http.StatusBadRequest, ErrBadData, err)
			return
		}
		if err != nil {
			WriteStoreError(w, err)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": out})
	})
	mux.HandleFunc("GET /api/v1/service-graph", func(w http.ResponseWriter, r *http.Request) {
		rng, ok := parseServiceRange(w, r)
		if !ok {
			return
		}
		out, err := sm.Graph(r.Context(), rng)
		if err != nil {
			WriteStoreError(w, err)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": out})
	})
}

func parseServiceRange(w http.ResponseWriter, r *http.Request) (servicemap.Range, bool) {
	start, end, err := ParseRange(r)
	if err != nil {
		WriteError(w, http.StatusBadRequest, ErrBadData, err)
		return servicemap.Range{}, false
	}
	// PromQL works in milliseconds, and fractional Unix seconds parse
	// with float error (1.8e9 s holds ~240 ns of precision): round, as
	// Prometheus' own API does, so an end on a sample's timestamp
	// includes that sample.
	start, end = start.Round(time.Millisecond), end.Round(time.Millisecond)
	step, err := ParseDuration(r.FormValue("step"), 0)
	if err == nil && step > 0 && end.Sub(start)/step > maxSparkPoints {
		err = fmt.Errorf("step %s gives more than %d points over the range", step, maxSparkPoints)
	}
	if err == nil && step > 0 && step < time.Millisecond {
		err = fmt.Errorf("step %s is below 1ms", step)
	}
	if err != nil {
		WriteError(w, http.StatusBadRequest, ErrBadData, fmt.Errorf("step: %w", err))
		return servicemap.Range{}, false
	}
	return servicemap.Range{Start: start, End: end, Step: step}, true
}
