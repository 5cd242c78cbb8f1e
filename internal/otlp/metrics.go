package otlp

import (
	"github.com/prometheus/client_golang/prometheus"
)

type transport int

const (
	transportGRPC transport = iota
	transportHTTP
)

func (t transport) String() string {
	if t == transportHTTP {
		return "http"
	}
	return "grpc"
}

type signal int

const (
	sigTraces signal = iota
	sigLogs
	sigMetrics
)

func (s signal) String() string {
	switch s {
	case sigLogs:
		return "logs"
	case sigMetrics:
		return "metrics"
	}
	return "traces"
}

// itemCounters are the accepted/refused counters of one signal on one
// transport, resolved once so the hot path does no label lookups.
type itemCounters struct {
	accepted, refused prometheus.Counter
	requestBytes      prometheus.Observer
}

type metrics struct {
	items       [2][3]itemCounters // [transport][signal]
	requests    *prometheus.CounterVec
	truncated   prometheus.Counter
	dropped     prometheus.Counter
	invalidUTF8 prometheus.Counter
	rejectedIDs prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	labels := []string{"transport"}
	acc := [3]*prometheus.CounterVec{
		prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trenchcoat_receiver_accepted_spans_total",
			Help: "Spans accepted and made durable by the consumer.",
		}, labels),
		prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trenchcoat_receiver_accepted_log_records_total",
			Help: "Log records accepted and made durable by the consumer.",
		}, labels),
		prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trenchcoat_receiver_accepted_metric_points_total",
			Help: "Metric data points accepted and made durable by the consumer.",
		}, labels),
	}
	ref := [3]*prometheus.CounterVec{
		prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trenchcoat_receiver_refused_spans_total",
			Help: "Spans decoded but refused (invalid, rejected, or the consumer failed).",
		}, labels),
		prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trenchcoat_receiver_refused_log_records_total",
			Help: "Log records decoded but refused (invalid, rejected, or the consumer failed).",
		}, labels),
		prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trenchcoat_receiver_refused_metric_points_total",
			Help: "Metric data points decoded but refused (invalid, rejected, or the consumer failed).",
		}, labels),
	}
	size := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "trenchcoat_receiver_request_bytes",
		Help: "Size of OTLP request messages after decompression.",
		// 256 B .. 64 MiB
		Buckets: prometheus.ExponentialBuckets(256, 4, 10),
	}, []string{"transport", "signal"})
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trenchcoat_receiver_requests_total",
			Help: "OTLP export requests by outcome (ok, partial, invalid, too_large, unsupported_media, overloaded, unavailable, error).",
		}, []string{"transport", "signal", "outcome"}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trenchcoat_receiver_truncated_attribute_values_total",
			Help: "String or bytes attribute values cut to the configured maximum length.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trenchcoat_receiver_dropped_attributes_total",
			Help: "Attributes dropped over the per-element limit (also added to dropped_attributes_count).",
		}),
		invalidUTF8: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trenchcoat_receiver_invalid_utf8_strings_total",
			Help: "Strings with invalid UTF-8 whose bad bytes were replaced with U+FFFD.",
		}),
		rejectedIDs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trenchcoat_receiver_rejected_invalid_id_spans_total",
			Help: "Spans rejected through partial success for an all-zero trace_id or span_id.",
		}),
	}
	for t := range 2 {
		tl := transport(t).String()
		for s := range 3 {
			m.items[t][s] = itemCounters{
				accepted:     acc[s].WithLabelValues(tl),
				refused:      ref[s].WithLabelValues(tl),
				requestBytes: size.WithLabelValues(tl, signal(s).String()),
			}
		}
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{size, m.requests, m.truncated, m.dropped, m.invalidUTF8, m.rejectedIDs}
	for s := range 3 {
		cs = append(cs, acc[s], ref[s])
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) request(t transport, s signal, outcome string) {
	m.requests.WithLabelValues(t.String(), s.String(), outcome).Inc()
}
