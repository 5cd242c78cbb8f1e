// Package api serves the HTTP JSON API. Handlers are thin: they parse
// parameters, call a query or store, and write JSON. Each family of
// endpoints lives in its own file (traces.go, logs.go, slos.go, ...) and
// registers itself on the mux through a Register* function called by cmd.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/common/model"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// Error types, as the Prometheus HTTP API names them.
const (
	ErrBadData     = "bad_data"
	ErrExecution   = "execution"
	ErrTimeout     = "timeout"
	ErrCanceled    = "canceled"
	ErrInternal    = "internal"
	ErrNotFound    = "not_found"
	ErrUnavailable = "unavailable"
)

// WriteJSON writes v as JSON with the given status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client may have gone; nothing to do about it
}

// WriteError writes the JSON error shape {"status":"error","errorType","error"}.
func WriteError(w http.ResponseWriter, code int, errType string, err error) {
	WriteJSON(w, code, map[string]string{"status": "error", "errorType": errType, "error": err.Error()})
}

// WriteStoreError maps a store or query error to a status code and writes it.
func WriteStoreError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, http.StatusNotFound, ErrNotFound, err)
	case errors.Is(err, store.ErrLimit):
		WriteError(w, http.StatusUnprocessableEntity, ErrExecution, err)
	case errors.Is(err, store.ErrUnsupported):
		WriteError(w, http.StatusBadRequest, ErrBadData, err)
	case errors.Is(err, store.ErrUnavailable):
		WriteError(w, http.StatusServiceUnavailable, ErrUnavailable, err)
	case errors.Is(err, context.Canceled):
		WriteError(w, 499, ErrCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		WriteError(w, http.StatusServiceUnavailable, ErrTimeout, err)
	default:
		WriteError(w, http.StatusInternalServerError, ErrInternal, err)
	}
}

// ParseTime accepts Unix seconds (fractional allowed) or RFC 3339. An empty
// string returns def.
func ParseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f > 1e11 || f < -1e11 {
			return time.Time{}, fmt.Errorf("time %q out of range", s)
		}
		// Milliseconds, as Prometheus rounds: float seconds carry a few
		// hundred nanoseconds of error that would miss a sample exactly at
		// the given time.
		return time.UnixMilli(int64(math.Round(f * 1000))).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot parse %q as a time: want Unix seconds or RFC 3339", s)
	}
	return t, nil
}

// ParseRange reads start and end from the request, defaulting to the last
// hour, and checks start <= end.
func ParseRange(r *http.Request) (start, end time.Time, err error) {
	now := time.Now()
	end, err = ParseTime(r.FormValue("end"), now)
	if err != nil {
		return start, end, fmt.Errorf("end: %w", err)
	}
	start, err = ParseTime(r.FormValue("start"), end.Add(-time.Hour))
	if err != nil {
		return start, end, fmt.Errorf("start: %w", err)
	}
	if end.Before(start) {
		return start, end, errors.New("end is before start")
	}
	return start, end, nil
}

// ParseDuration accepts a Prometheus duration ("15s", "1h30m") or seconds
// ("15", "0.5"). An empty string returns def.
func ParseDuration(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f <= 0 || math.IsNaN(f) || f > 1e9 {
			return 0, fmt.Errorf("duration %q must be positive and finite", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := model.ParseDuration(s) // Prometheus' syntax: 1h30m, 7d, 2w
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q as a duration", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return time.Duration(d), nil
}

// ParseLimit reads an integer "limit" parameter in [1, max], default def.
func ParseLimit(r *http.Request, def, max int) (int, error) {
	s := r.FormValue("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("limit %q must be a positive integer", s)
	}
	if n > max {
		n = max
	}
	return n, nil
}
