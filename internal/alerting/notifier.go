package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/trenchcoat/trenchcoat/internal/slo"
)

// amAlert is an alert in Alertmanager API v2's postableAlert shape. A
// firing alert carries EndsAt = ValidUntil (a few evaluation intervals
// ahead), so Alertmanager resolves it by itself if we stop sending; a
// resolved one carries the time it resolved.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// WebhookMessage is Alertmanager's webhook payload (version 4), so that
// receivers written for Alertmanager accept ours.
type WebhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert of a WebhookMessage.
type WebhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// queueLen bounds notifications waiting to be sent. Alerts are resent every
// ResendDelay while firing, so dropping a batch under a stuck receiver loses
// nothing for long.
const queueLen = 256

type notifier struct {
	amURLs   []string
	webhooks func(sloName string) []string
	client   *http.Client
	logger   *slog.Logger
	now      func() time.Time

	mu     sync.Mutex
	queue  chan []amAlert
	closed bool

	sent, failed *prometheus.CounterVec
	dropped      prometheus.Counter
}

func newNotifier(amURLs []string, webhooks func(string) []string, reg prometheus.Registerer, logger *slog.Logger) *notifier {
	n := &notifier{
		amURLs:   amURLs,
		webhooks: webhooks,
		client:   &http.Client{Timeout: 10 * time.Second},
		logger:   logger,
		now:      time.Now,
		queue:    make(chan []amAlert, queueLen),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trenchcoat_alerting_notifications_sent_total",
			Help: "Alerts delivered, by receiver kind (alertmanager, webhook).",
		}, []string{"receiver"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trenchcoat_alerting_notification_errors_total",
			Help: "Failed deliveries of alert batches, by receiver kind.",
		}, []string{"receiver"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trenchcoat_alerting_notifications_dropped_total",
			Help: "Alert batches dropped because the send queue was full.",
		}),
	}
	if reg != nil {
		reg.MustRegister(n.sent, n.failed, n.dropped)
	}
	return n
}

func (n *notifier) enqueue(alerts []amAlert) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	select {
	case n.queue <- alerts:
	default:
		n.dropped.Inc()
	}
}

func (n *notifier) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
}

// run sends queued batches until the queue is closed and drained, or ctx
// is cancelled.
func (n *notifier) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case batch, ok := <-n.queue:
			if !ok {
				return
			}
			n.send(ctx, batch)
		}
	}
}

func (n *notifier) send(ctx context.Context, batch []amAlert) {
	if len(n.amURLs) > 0 {
		body, err := json.Marshal(batch)
		if err != nil {
			panic("BUG: marshalling alerts: " + err.Error())
		}
		for _, u := range n.amURLs {
			if err := n.post(ctx, alertsEndpoint(u), body); err != nil {
				n.failed.WithLabelValues("alertmanager").Inc()
				n.logger.Warn("sending alerts to Alertmanager failed", "url", u, "err", err)
				continue
			}
			n.sent.WithLabelValues("alertmanager").Add(float64(len(batch)))
		}
	}
	// Webhooks are per SLO: group the batch by its slo label.
	bySLO := map[string][]amAlert{}
	for _, a := range batch {
		bySLO[a.Labels[slo.LabelSLO]] = append(bySLO[a.Labels[slo.LabelSLO]], a)
	}
	for _, name := range slices.Sorted(maps.Keys(bySLO)) {
		hooks := n.webhooks(name)
		if len(hooks) == 0 {
			continue
		}
		body, err := json.Marshal(n.webhookMessage(name, bySLO[name]))
		if err != nil {
			panic("BUG: marshalling webhook message: " + err.Error())
		}
		for _, u := range hooks {
			if err := n.post(ctx, u, body); err != nil {
				n.failed.WithLabelValues("webhook").Inc()
				n.logger.Warn("sending alerts to webhook failed", "url", u, "slo", name, "err", err)
				continue
			}
			n.sent.WithLabelValues("webhook").Add(float64(len(bySLO[name])))
		}
	}
}

func alertsEndpoint(base string) string {
	base = strings.TrimRight(base, "/")
	if strings.HasSuffix(base, "/api/v2/alerts") {
		return base
	}
	return base + "/api/v2/alerts"
}

func (n *notifier) post(ctx context.Context, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "trenchcoat")
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

func (n *notifier) webhookMessage(sloName string, alerts []amAlert) WebhookMessage {
	now := n.now()
	msg := WebhookMessage{
		Version:           "4",
		GroupKey:          fmt.Sprintf("{}:{slo=%q}", sloName),
		Status:            "resolved",
		Receiver:          "trenchcoat",
		GroupLabels:       map[string]string{slo.LabelSLO: sloName},
		CommonLabels:      common(alerts, func(a amAlert) map[string]string { return a.Labels }),
		CommonAnnotations: common(alerts, func(a amAlert) map[string]string { return a.Annotations }),
	}
	for _, a := range alerts {
		wa := WebhookAlert{
			Status:       "firing",
			Labels:       a.Labels,
			Annotations:  a.Annotations,
			StartsAt:     a.StartsAt,
			GeneratorURL: a.GeneratorURL,
			Fingerprint:  fingerprint(a.Labels),
		}
		if !a.EndsAt.IsZero() && !a.EndsAt.After(now) {
			wa.Status = "resolved"
			wa.EndsAt = a.EndsAt
		} else {
			msg.Status = "firing"
		}
		msg.Alerts = append(msg.Alerts, wa)
	}
	return msg
}

// common returns the key-value pairs shared by all alerts.
func common(alerts []amAlert, get func(amAlert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(alerts) == 0 {
		return out
	}
	maps.Copy(out, get(alerts[0]))
	for _, a := range alerts[1:] {
		m := get(a)
		for k, v := range out {
			if m[k] != v {
				delete(out, k)
			}
		}
	}
	return out
}

func fingerprint(m map[string]string) string {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}
