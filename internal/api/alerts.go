package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/alerting"
)

// PromAlert is an alert in the shape of Prometheus' /api/v1/alerts, so that
// Grafana and scripts written for Prometheus read ours. Value is a string,
// as Prometheus writes it.
type PromAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    *time.Time        `json:"activeAt,omitempty"`
	Value       string            `json:"value"`
}

// RegisterAlerts serves GET /api/v1/alerts: the active (pending and firing)
// alerts, firing first.
func RegisterAlerts(mux *http.ServeMux, mgr *alerting.Manager) {
	mux.HandleFunc("GET /api/v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		as := mgr.Alerts()
		out := make([]PromAlert, 0, len(as))
		for _, a := range as {
			at := a.ActiveAt
			out = append(out, PromAlert{
				Labels:      a.Labels,
				Annotations: a.Annotations,
				State:       a.State,
				ActiveAt:    &at,
				Value:       strconv.FormatFloat(a.Value, 'e', -1, 64),
			})
		}
		WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{"alerts": out}})
	})
}
