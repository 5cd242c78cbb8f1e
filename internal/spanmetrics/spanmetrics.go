// Package spanmetrics derives RED metrics from spans at ingest, with the
// names and labels of Tempo's metrics-generator and the Collector's
// spanmetrics connector, so existing dashboards and queries work:
//
//	traces_spanmetrics_calls_total
//	traces_spanmetrics_latency_bucket / _sum / _count   (seconds)
//
// labelled service, span_name, span_kind (SPAN_KIND_SERVER ...), status_code
// (STATUS_CODE_ERROR ...) and the configured dimensions, dots turned into
// underscores. Samples are written at span time (see package series).
package spanmetrics

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/spanmetrics/series"
)

// Metric names, as Tempo writes them.
const (
	MetricCalls   = "traces_spanmetrics_calls_total"
	MetricLatency = "traces_spanmetrics_latency" // _bucket, _sum, _count
)

// DefaultDimensions are looked up in span attributes, then in resource
// attributes.
var DefaultDimensions = []string{
	"cloud.region", "cloud.availability_zone", "cloud.platform",
	"aws.ecs.task.family", "faas.name", "deployment.environment.name", "http.route",
}

// Config configures a Generator. Zero values take the defaults noted.
type Config struct {
	// Dimensions are attribute keys added as labels (dots become
	// underscores). nil means DefaultDimensions; an empty non-nil slice
	// means none.
	Dimensions []string
	// Buckets in seconds; default series.DefaultBuckets().
	Buckets []float64
	// Interval between samples in span time; default 15s.
	Interval time.Duration
	// Lag behind a series' newest span time before its interval is
	// written; default 10s.
	Lag time.Duration
	// StaleAfter: series idle this long (span time) are no longer written;
	// default 15m.
	StaleAfter time.Duration
	// MaxLateness: spans ending this long before the last interval written
	// are dropped (counted as reason="too_late") instead of being counted
	// into the next interval; default 10m (see series.Config).
	MaxLateness time.Duration
	// MaxSeries caps the series (each is 20 samples per interval with the
	// default buckets); spans of further series are dropped and counted in
	// trenchcoat_spanmetrics_dropped_spans_total{reason="max_series"}.
	// Default 20,000.
	MaxSeries  int
	Registerer prometheus.Registerer
	Logger     *slog.Logger

	now func() time.Time // tests
}

// Generator turns spans into span metrics. ConsumeTraces is safe for
// concurrent use.
type Generator struct {
	reg      *series.Registry
	dims     []string
	dimNames []string
	spans    prometheus.Counter
	log      *slog.Logger

	// Scratch for ConsumeTraces, guarded by scratchMu (held for a batch).
	scratchMu sync.Mutex
	seed      maphash.Seed
	h         maphash.Hash
	key       []string
	resVals   []string
	byLen     [][]int // dimension indexes by key length
}

// intrinsic labels, in key order: service, span_name, span_kind, status_code.
var intrinsic = []string{"service", "span_name", "span_kind", "status_code"}

// New returns a generator that writes into app (tsdb.DB satisfies
// storage.AppendableV2; the V1 Appendable is deprecated in Prometheus 3).
func New(cfg Config, app storage.AppendableV2) (*Generator, error) {
	dims := cfg.Dimensions
	if dims == nil {
		dims = DefaultDimensions
	}
	g := &Generator{dims: dims, log: cfg.Logger, seed: maphash.MakeSeed()}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	seen := map[string]string{}
	for _, in := range intrinsic {
		seen[in] = in
	}
	for _, d := range dims {
		n := SanitizeLabelName(d)
		if prev, ok := seen[n]; ok {
			return nil, fmt.Errorf("spanmetrics: dimension %q becomes label %q, already used by %q", d, n, prev)
		}
		seen[n] = d
		g.dimNames = append(g.dimNames, n)
	}
	g.h.SetSeed(g.seed)
	for d, k := range dims {
		for len(g.byLen) <= len(k) {
			g.byLen = append(g.byLen, nil)
		}
		g.byLen[len(k)] = append(g.byLen[len(k)], d)
	}
	g.key = make([]string, 0, 4+len(dims))
	g.resVals = make([]string, len(dims))
	reg, err := series.New(series.Config{
		Shape:       series.Shape{Counters: []string{MetricCalls}, Histograms: []string{MetricLatency}},
		Buckets:     cfg.Buckets,
		Interval:    cfg.Interval,
		Lag:         cfg.Lag,
		StaleAfter:  cfg.StaleAfter,
		MaxSeries:   cfg.MaxSeries,
		MaxLateness: cfg.MaxLateness,
		Labels:      g.labels,
		Subsystem:   "spanmetrics",
		Registerer:  cfg.Registerer,
		Logger:      g.log,
		Now:         cfg.now,
	}, app)
	if err != nil {
		return nil, fmt.Errorf("spanmetrics: %w", err)
	}
	g.reg = reg
	g.spans = prometheus.NewCounter(prometheus.CounterOpts{Name: "trenchcoat_spanmetrics_spans_total",
		Help: "Spans seen by the span-metrics generator."})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(g.spans); err != nil {
			return nil, fmt.Errorf("spanmetrics: register self-metrics: %w", err)
		}
	}
	return g, nil
}

// labels builds the base labels of a new series from its key. Empty
// dimension values are left out: Prometheus treats an empty label as
// absent, and writing it would only make two spellings of one series.
func (g *Generator) labels(key []string, b *labels.ScratchBuilder) {
	for i, n := range intrinsic {
		if key[i] != "" {
			b.Add(n, key[i])
		}
	}
	for i, n := range g.dimNames {
		if v := key[len(intrinsic)+i]; v != "" {
			b.Add(n, v)
		}
	}
	b.Sort()
}

// ConsumeTraces counts the spans of td. It does not write to the metric
// store (a background loop does, see Start), so it costs a hash lookup and
// a few additions per span. td is not retained.
func (g *Generator) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	g.scratchMu.Lock()
	defer g.scratchMu.Unlock()
	tx := g.reg.Begin()
	defer tx.End()
	n := 0
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		svc := ServiceName(res)
		for d, k := range g.dims {
			g.resVals[d] = ""
			if v, ok := res.Get(k); ok {
				g.resVals[d] = valueString(v)
			}
		}
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			n += spans.Len()
			for k := range spans.Len() {
				sp := spans.At(k)
				key := append(g.key[:0], svc, sp.Name(), KindString(sp.Kind()), StatusString(sp.Status().Code()))
				key = append(key, g.resVals...)
				g.spanDims(sp.Attributes(), key[len(intrinsic):])
				g.key = key
				end := int64(sp.EndTimestamp())
				if tx.TooOld(end) {
					continue
				}
				s := tx.Series(g.hash(key), key)
				if s == nil {
					continue
				}
				d := tx.Delta(s, end)
				if d == nil {
					continue
				}
				d[0]++
				tx.Observe(d, 0, durationSeconds(sp.StartTimestamp(), sp.EndTimestamp()))
			}
		}
	}
	g.spans.Add(float64(n))
	return nil
}

// spanDims overwrites dims (resource values) with span attribute values
// where the span has them. One pass over the span's attributes, skipping
// keys whose length no dimension has, is cheaper than a Map.Get per
// dimension (each a scan of every attribute).
func (g *Generator) spanDims(attrs pcommon.Map, dims []string) {
	attrs.Range(func(k string, v pcommon.Value) bool {
		if len(k) >= len(g.byLen) {
			return true
		}
		for _, d := range g.byLen[len(k)] {
			if g.dims[d] == k {
				dims[d] = valueString(v)
				break
			}
		}
		return true
	})
}

func (g *Generator) hash(key []string) uint64 {
	g.h.Reset()
	for _, k := range key {
		g.h.WriteString(k)
		g.h.WriteByte(0xff) // not valid UTF-8, so it cannot occur inside a value
	}
	return g.h.Sum64()
}

func durationSeconds(start, end pcommon.Timestamp) float64 {
	if end <= start {
		return 0
	}
	return float64(end-start) / 1e9
}

// valueString avoids an allocation for string attributes (nearly all).
func valueString(v pcommon.Value) string {
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return v.AsString()
}

// ServiceName returns service.name of a resource, or "unknown_service"
// as the OpenTelemetry SDKs default it.
func ServiceName(res pcommon.Map) string {
	if v, ok := res.Get("service.name"); ok {
		if s := valueString(v); s != "" {
			return s
		}
	}
	return "unknown_service"
}

var kindNames = [...]string{
	ptrace.SpanKindUnspecified: "SPAN_KIND_UNSPECIFIED",
	ptrace.SpanKindInternal:    "SPAN_KIND_INTERNAL",
	ptrace.SpanKindServer:      "SPAN_KIND_SERVER",
	ptrace.SpanKindClient:      "SPAN_KIND_CLIENT",
	ptrace.SpanKindProducer:    "SPAN_KIND_PRODUCER",
	ptrace.SpanKindConsumer:    "SPAN_KIND_CONSUMER",
}

// KindString spells a span kind as the OTLP protobuf enum, as Tempo does.
func KindString(k ptrace.SpanKind) string {
	if int(k) >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "SPAN_KIND_UNSPECIFIED"
}

// StatusString spells a status code as the OTLP protobuf enum, as Tempo does.
func StatusString(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "STATUS_CODE_OK"
	case ptrace.StatusCodeError:
		return "STATUS_CODE_ERROR"
	default:
		return "STATUS_CODE_UNSET"
	}
}

// SanitizeLabelName turns an attribute key into a Prometheus label name:
// every character outside [a-zA-Z0-9_] becomes '_', and a leading digit
// gets a '_' prefix (as the Collector's and Tempo's translation does).
func SanitizeLabelName(s string) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}

// Start runs the loop that writes samples as span time advances and on a
// wall-clock ticker. ctx is only for starting; Shutdown stops the loop.
func (g *Generator) Start(ctx context.Context) error { return g.reg.Start(ctx) }

// Shutdown stops the loop and writes everything counted so far (the open
// interval included). Safe to call twice and without Start.
func (g *Generator) Shutdown(ctx context.Context) error {
	if err := g.reg.Stop(ctx); err != nil {
		return fmt.Errorf("spanmetrics: %w", err)
	}
	return g.reg.Flush(ctx)
}
