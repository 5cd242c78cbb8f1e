// Package pipeline carries decoded OTLP data from the receivers to the
// stores and then to the generators that derive metrics from spans. It is
// the place where backpressure is decided: at most MaxInFlight writes run
// at once, and a write that cannot get a slot within AdmitWait is refused
// with store.ErrOverloaded, which receivers turn into 429/RESOURCE_EXHAUSTED.
// Memory stays bounded because each admitted request is bounded in size by
// the receiver and the number admitted is bounded here.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// TraceConsumer is a generator fed with spans after they are durable.
// Its errors are counted and logged, never returned to the client: the
// spans are already stored.
type TraceConsumer interface {
	ConsumeTraces(ctx context.Context, td ptrace.Traces) error
}

// Config wires the pipeline. Metrics may be nil: points are then accepted
// and dropped with a counted reason (for deployments without a metric store).
type Config struct {
	Traces      store.TraceWriter
	Logs        store.LogWriter
	Metrics     store.MetricWriter
	Generators  []TraceConsumer
	MaxInFlight int           // default 16
	AdmitWait   time.Duration // default 200 ms
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
}

// Pipeline implements the receivers' Consumer. Safe for concurrent use.
type Pipeline struct {
	cfg      Config
	slots    chan struct{}
	inFlight prometheus.GaugeFunc
	refused  *prometheus.CounterVec
	accepted *prometheus.CounterVec
	genErrs  prometheus.Counter
}

func New(cfg Config) (*Pipeline, error) {
	if cfg.Traces == nil || cfg.Logs == nil {
		return nil, errors.New("pipeline: Traces and Logs writers are required")
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 16
	}
	if cfg.AdmitWait <= 0 {
		cfg.AdmitWait = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight)}
	p.inFlight = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trenchcoat_pipeline_queue_depth", Help: "Writes in flight through the pipeline."},
		func() float64 { return float64(len(p.slots)) })
	p.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trenchcoat_pipeline_refused_total", Help: "Items refused by the pipeline, by signal and reason."}, []string{"signal", "reason"})
	p.accepted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trenchcoat_pipeline_accepted_total", Help: "Items made durable, by signal."}, []string{"signal"})
	p.genErrs = prometheus.NewCounter(prometheus.CounterOpts{Name: "trenchcoat_pipeline_generator_errors_total", Help: "Errors of span-derived metric generators."})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{p.inFlight, p.refused, p.accepted, p.genErrs} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("pipeline: %w", err)
			}
		}
	}
	return p, nil
}

func (p *Pipeline) admit(ctx context.Context, signal string, n int) (func(), error) {
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, nil
	default:
	}
	t := time.NewTimer(p.cfg.AdmitWait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, nil
	case <-t.C:
		p.refused.WithLabelValues(signal, "overloaded").Add(float64(n))
		return nil, store.ErrOverloaded
	case <-ctx.Done():
		p.refused.WithLabelValues(signal, "canceled").Add(float64(n))
		return nil, fmt.Errorf("%w: %v", store.ErrUnavailable, ctx.Err())
	}
}

// ConsumeTraces stores td, then feeds the generators.
func (p *Pipeline) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	n := td.SpanCount()
	if n == 0 {
		return nil
	}
	release, err := p.admit(ctx, "spans", n)
	if err != nil {
		return err
	}
	defer release()
	if err := p.cfg.Traces.WriteTraces(ctx, td); err != nil {
		p.refused.WithLabelValues("spans", "store").Add(float64(n))
		return err
	}
	p.accepted.WithLabelValues("spans").Add(float64(n))
	for _, g := range p.cfg.Generators {
		if err := g.ConsumeTraces(ctx, td); err != nil {
			p.genErrs.Inc()
			p.cfg.Logger.Warn("span generator failed", "err", err)
		}
	}
	return nil
}

// ConsumeLogs stores ld.
func (p *Pipeline) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	n := ld.LogRecordCount()
	if n == 0 {
		return nil
	}
	release, err := p.admit(ctx, "logs", n)
	if err != nil {
		return err
	}
	defer release()
	if err := p.cfg.Logs.WriteLogs(ctx, ld); err != nil {
		p.refused.WithLabelValues("logs", "store").Add(float64(n))
		return err
	}
	p.accepted.WithLabelValues("logs").Add(float64(n))
	return nil
}

// ConsumeMetrics stores md in the metric store.
func (p *Pipeline) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	n := md.DataPointCount()
	if n == 0 {
		return nil
	}
	if p.cfg.Metrics == nil {
		p.refused.WithLabelValues("points", "no_metric_store").Add(float64(n))
		return &store.PartialError{Rejected: int64(n), Reason: "this server has no metric store configured"}
	}
	release, err := p.admit(ctx, "points", n)
	if err != nil {
		return err
	}
	defer release()
	if err := p.cfg.Metrics.WriteMetrics(ctx, md); err != nil {
		var pe *store.PartialError
		if !errors.As(err, &pe) {
			p.refused.WithLabelValues("points", "store").Add(float64(n))
		}
		return err
	}
	p.accepted.WithLabelValues("points").Add(float64(n))
	return nil
}
