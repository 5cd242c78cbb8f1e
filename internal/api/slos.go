package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/trenchcoat/trenchcoat/internal/alerting"
	"github.com/trenchcoat/trenchcoat/internal/slo"
)

// maxSLOBody bounds SLO definitions posted to the API.
const maxSLOBody = 1 << 20

// errConflict is the errorType of 409 answers (an SLO that exists, or one
// defined in a read-only --slo-dir file).
const errConflict = "conflict"

// SLOEntry is an SLO definition as listed by GET /api/v1/slos.
type SLOEntry struct {
	slo.SLO
	File     string `json:"file"`
	ReadOnly bool   `json:"readOnly"`
	// AlertState is the highest state of the SLO's alerts: "firing",
	// "pending", "inactive", or "unknown" before the first evaluation.
	AlertState string `json:"alertState"`
}

// SLOStatus is the answer of GET /api/v1/slos/{name}.
type SLOStatus struct {
	*alerting.Status
	Definition slo.SLO `json:"definition"`
	ReadOnly   bool    `json:"readOnly"`
}

// RegisterSLOs serves the SLO endpoints:
//
//	GET    /api/v1/slos               definitions with their alert state
//	POST   /api/v1/slos               create (YAML, JSON or OpenSLO v1 body); 201, 400, 409
//	GET    /api/v1/slos/{name}        status (?start=&end=, default the last hour)
//	PUT    /api/v1/slos/{name}        create or replace; 200 or 201
//	DELETE /api/v1/slos/{name}        delete; 409 for SLOs from --slo-dir files
//	GET    /api/v1/slos/{name}/rules  the Prometheus rule file (YAML)
func RegisterSLOs(mux *http.ServeMux, reg *alerting.Registry, mgr *alerting.Manager) {
	mux.HandleFunc("GET /api/v1/slos", func(w http.ResponseWriter, r *http.Request) {
		entries := reg.List()
		out := make([]SLOEntry, 0, len(entries))
		for _, e := range entries {
			out = append(out, SLOEntry{SLO: e.SLO, File: e.File, ReadOnly: e.ReadOnly, AlertState: alertState(mgr.RuleStates(e.SLO.Name))})
		}
		WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": out})
	})

	mux.HandleFunc("POST /api/v1/slos", func(w http.ResponseWriter, r *http.Request) {
		s, ok := readSLO(w, r, "")
		if !ok {
			return
		}
		if err := reg.Create(s); err != nil {
			writeRegistryError(w, err)
			return
		}
		w.Header().Set("Location", "/api/v1/slos/"+s.Name)
		WriteJSON(w, http.StatusCreated, map[string]any{"status": "success", "data": s})
	})

	mux.HandleFunc("PUT /api/v1/slos/{name}", func(w http.ResponseWriter, r *http.Request) {
		s, ok := readSLO(w, r, r.PathValue("name"))
		if !ok {
			return
		}
		created, err := reg.Put(s)
		if err != nil {
			writeRegistryError(w, err)
			return
		}
		code := http.StatusOK
		if created {
			code = http.StatusCreated
		}
		WriteJSON(w, code, map[string]any{"status": "success", "data": s})
	})

	mux.HandleFunc("DELETE /api/v1/slos/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := reg.Delete(r.PathValue("name")); err != nil {
			writeRegistryError(w, err)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]any{"status": "success"})
	})

	mux.HandleFunc("GET /api/v1/slos/{name}", func(w http.ResponseWriter, r *http.Request) {
		e, err := reg.Get(r.PathValue("name"))
		if err != nil {
			writeRegistryError(w, err)
			return
		}
		start, end, err := ParseRange(r)
		if err != nil {
			WriteError(w, http.StatusBadRequest, ErrBadData, err)
			return
		}
		st, err := mgr.Status(r.Context(), e.SLO.Name, start, end)
		if err != nil {
			writeRegistryError(w, err)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": SLOStatus{Status: st, Definition: e.SLO, ReadOnly: e.ReadOnly}})
	})

	mux.HandleFunc("GET /api/v1/slos/{name}/rules", func(w http.ResponseWriter, r *http.Request) {
		e, err := reg.Get(r.PathValue("name"))
		if err != nil {
			writeRegistryError(w, err)
			return
		}
		b, err := slo.GenerateRuleFile(e.SLO)
		if err != nil {
			WriteError(w, http.StatusInternalServerError, ErrInternal, err)
			return
		}
		w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", e.SLO.Name+".rules.yaml"))
		_, _ = w.Write(b)
	})
}

// readSLO reads one SLO from the body. For PUT, pathName is the name in
// the URL: a body without a name takes it, a different one is refused.
func readSLO(w http.ResponseWriter, r *http.Request, pathName string) (slo.SLO, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSLOBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			WriteError(w, http.StatusRequestEntityTooLarge, ErrBadData, fmt.Errorf("SLO definition over %d bytes", maxSLOBody))
			return slo.SLO{}, false
		}
		WriteError(w, http.StatusBadRequest, ErrBadData, err)
		return slo.SLO{}, false
	}
	slos, err := slo.Parse(b)
	if err != nil {
		WriteError(w, http.StatusBadRequest, ErrBadData, err)
		return slo.SLO{}, false
	}
	if len(slos) != 1 {
		WriteError(w, http.StatusBadRequest, ErrBadData, fmt.Errorf("send one SLO per request, found %d", len(slos)))
		return slo.SLO{}, false
	}
	s := slos[0]
	if pathName != "" && s.Name != pathName {
		WriteError(w, http.StatusBadRequest, ErrBadData, fmt.Errorf("name: %q in the body differs from %q in the URL", s.Name, pathName))
		return slo.SLO{}, false
	}
	return s, true
}

func writeRegistryError(w http.ResponseWriter, err error) {
	var ve *slo.ValidationError
	switch {
	case errors.As(err, &ve):
		WriteError(w, http.StatusBadRequest, ErrBadData, err)
	case errors.Is(err, alerting.ErrSLOExists), errors.Is(err, alerting.ErrSLOReadOnly):
		WriteError(w, http.StatusConflict, errConflict, err)
	default:
		WriteStoreError(w, err)
	}
}

func alertState(states []alerting.RuleState) string {
	rank := map[string]int{"unknown": 0, "inactive": 1, "pending": 2, "firing": 3}
	best := "unknown"
	if len(states) == 0 {
		return "inactive"
	}
	for _, s := range states {
		if rank[s.State] > rank[best] {
			best = s.State
		}
	}
	return best
}
