package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/investigate"
)

// SLOResolver maps an SLO name to the service it measures. It returns an
// error wrapping store.ErrNotFound for an unknown SLO.
type SLOResolver func(ctx context.Context, slo string) (service string, err error)

// maxReports bounds the in-memory list of past investigations; the oldest
// go first.
const maxReports = 100

type investigations struct {
	d       *investigate.Detective
	resolve SLOResolver
	mu      sync.Mutex
	reports []*investigate.Report // oldest first
}

// RegisterInvestigations serves POST/GET /api/v1/investigations and
// GET /api/v1/investigations/{id}. resolve may be nil when no SLOs exist;
// a request naming an SLO then needs a service too.
func RegisterInvestigations(mux *http.ServeMux, d *investigate.Detective, resolve SLOResolver) {
	h := &investigations{d: d, resolve: resolve}
	mux.HandleFunc("POST /api/v1/investigations", h.create)
	mux.HandleFunc("GET /api/v1/investigations", h.list)
	mux.HandleFunc("GET /api/v1/investigations/{id}", h.get)
}

// flexTime accepts RFC 3339 or Unix seconds, as a JSON string or number.
type flexTime struct{ time.Time }

func (t *flexTime) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" {
		return nil
	}
	v, err := ParseTime(s, time.Time{})
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

type investigationRequest struct {
	SLO     string   `json:"slo"`
	Service string   `json:"service"`
	Start   flexTime `json:"start"`
	End     flexTime `json:"end"`
	Since   string   `json:"since"` // alternative to start: a duration before end
}

func (h *investigations) create(w http.ResponseWriter, r *http.Request) {
	var in investigationRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		WriteError(w, http.StatusBadRequest, ErrBadData, fmt.Errorf("body: %w", err))
		return
	}
	req := investigate.Request{SLO: in.SLO, Service: in.Service, Start: in.Start.Time, End: in.End.Time}
	if req.End.IsZero() {
		req.End = time.Now().UTC()
	}
	if req.Start.IsZero() {
		since, err := ParseDuration(in.Since, time.Hour)
		if err != nil {
			WriteError(w, http.StatusBadRequest, ErrBadData, fmt.Errorf("since: %w", err))
			return
		}
		req.Start = req.End.Add(-since)
	}
	if !req.Start.Before(req.End) {
		WriteError(w, http.StatusBadRequest, ErrBadData, errors.New("start must be before end"))
		return
	}
	if req.SLO != "" && req.Service == "" {
		if h.resolve == nil {
			WriteError(w, http.StatusBadRequest, ErrBadData, errors.New("cannot resolve SLOs here: give a service"))
			return
		}
		svc, err := h.resolve(r.Context(), req.SLO)
		if err != nil {
			WriteStoreError(w, fmt.Errorf("slo %q: %w", req.SLO, err))
			return
		}
		req.Service = svc
	}
	rep, err := h.d.Investigate(r.Context(), req)
	if err != nil {
		WriteStoreError(w, err)
		return
	}
	h.mu.Lock()
	h.reports = append(h.reports, rep)
	if len(h.reports) > maxReports {
		h.reports = append(h.reports[:0:0], h.reports[len(h.reports)-maxReports:]...)
	}
	h.mu.Unlock()
	WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": rep})
}

type reportSummary struct {
	ID        string    `json:"id"`
	SLO       string    `json:"slo,omitempty"`
	Service   string    `json:"service,omitempty"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Cause     string    `json:"cause,omitempty"`
	Resource  string    `json:"resource,omitempty"`
	Diagnosis string    `json:"diagnosis"`
	Findings  int       `json:"findings"`
	Finished  time.Time `json:"finished"`
}

func (h *investigations) list(w http.ResponseWriter, r *http.Request) {
	limit, err := ParseLimit(r, maxReports, maxReports)
	if err != nil {
		WriteError(w, http.StatusBadRequest, ErrBadData, err)
		return
	}
	h.mu.Lock()
	out := make([]reportSummary, 0, len(h.reports))
	for i := len(h.reports) - 1; i >= 0 && len(out) < limit; i-- { // newest first
		p := h.reports[i]
		out = append(out, reportSummary{ID: p.ID, SLO: p.Request.SLO, Service: p.Request.Service, Start: p.Request.Start, End: p.Request.End,
			Cause: p.Cause, Resource: p.Resource, Diagnosis: p.Diagnosis, Findings: len(p.Findings), Finished: p.Finished})
	}
	h.mu.Unlock()
	WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": out})
}

func (h *investigations) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var found *investigate.Report
	h.mu.Lock()
	for _, p := range h.reports {
		if p.ID == id {
			found = p
		}
	}
	h.mu.Unlock()
	if found != nil { // reports are not modified once stored
		WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": found})
		return
	}
	WriteError(w, http.StatusNotFound, ErrNotFound, fmt.Errorf("investigation %q not found", id))
}
