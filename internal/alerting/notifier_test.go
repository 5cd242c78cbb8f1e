package alerting

import (
	"log/slog"
	"testing"
	"time"
)

func TestWebhookMessage(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	n := newNotifier(nil, nil, nil, slog.New(slog.DiscardHandler))
	n.now = func() time.Time { return now }
	page := amAlert{
		Labels:      map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": "a", "severity": "page", "team": "x"},
		Annotations: map[string]string{"summary": "page", "runbook": "r"},
		StartsAt:    now.Add(-time.Hour),
		EndsAt:      now.Add(4 * time.Minute), // ValidUntil: still firing
	}
	ticket := amAlert{
		Labels:      map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": "a", "severity": "ticket", "team": "x"},
		Annotations: map[string]string{"summary": "ticket", "runbook": "r"},
		StartsAt:    now.Add(-time.Hour),
		EndsAt:      now.Add(-time.Second), // resolved
	}
	f := func(alerts []amAlert, status string, common map[string]string, statuses ...string) {
		t.Helper()
		msg := n.webhookMessage("a", alerts)
		if msg.Status != status || msg.Version != "4" || msg.GroupKey != `{}:{slo="a"}` || msg.Receiver != "trenchcoat" {
			t.Errorf("message %+v", msg)
		}
		if len(msg.CommonLabels) != len(common) {
			t.Errorf("common labels %v, want %v", msg.CommonLabels, common)
		}
		for k, v := range common {
			if msg.CommonLabels[k] != v {
				t.Errorf("common label %s=%q, want %q", k, msg.CommonLabels[k], v)
			}
		}
		for i, s := range statuses {
			a := msg.Alerts[i]
			if a.Status != s || a.Fingerprint == "" || (s == "firing") != a.EndsAt.IsZero() {
				t.Errorf("alert %d: %+v, want %s", i, a, s)
			}
		}
	}
	f([]amAlert{page}, "firing", page.Labels, "firing")
	f([]amAlert{ticket}, "resolved", ticket.Labels, "resolved")
	f([]amAlert{page, ticket}, "firing", map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": "a", "team": "x"}, "firing", "resolved")
	if msg := n.webhookMessage("a", []amAlert{page, ticket}); msg.CommonAnnotations["runbook"] != "r" || len(msg.CommonAnnotations) != 1 {
		t.Errorf("common annotations %v", msg.CommonAnnotations)
	}
	if got := alertsEndpoint("http://am:9093/"); got != "http://am:9093/api/v2/alerts" {
		t.Errorf("endpoint %s", got)
	}
	if got := alertsEndpoint("http://am:9093/api/v2/alerts"); got != "http://am:9093/api/v2/alerts" {
		t.Errorf("endpoint %s", got)
	}
}
