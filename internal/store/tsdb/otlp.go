package tsdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/deltatocumulativeprocessor"
	"github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

type translatorSettings = prometheusremotewrite.Settings

// newTranslatorSettings mirrors Prometheus' default OTLP configuration
// (UnderscoreEscapingWithSuffixes, underscore sanitization kept for
// backwards compatibility), or its NoTranslation strategy when keepUTF8.
func newTranslatorSettings(keepUTF8 bool) translatorSettings {
	return translatorSettings{
		AddMetricSuffixes:                    !keepUTF8,
		AllowUTF8:                            keepUTF8,
		LookbackDelta:                        defaultLookbackDelta,
		LabelNameUnderscoreSanitization:      true,
		LabelNamePreserveMultipleUnderscores: true,
	}
}

// WriteMetrics translates md to Prometheus series and commits them to the
// TSDB before returning: the commit has written the WAL records to the
// file (not fsynced), so an acknowledged write survives kill -9. Delta sums and histograms are
// first made cumulative per series, in memory, by the OpenTelemetry
// Collector's deltatocumulative processor (what Prometheus' own OTLP
// receiver uses for the same job); md is not modified.
//
// Samples the TSDB refuses (older than the out-of-order window, a
// different value at an existing timestamp, an invalid histogram) are
// skipped and counted; the rest is committed and a *store.PartialError
// says how many were refused.
func (s *Store) WriteMetrics(ctx context.Context, md pmetric.Metrics) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("%w: metric store closed", store.ErrUnavailable)
	}
	if hasDelta(md) {
		// The processor rewrites points in place; the caller's md may be
		// shared with other consumers.
		cp := pmetric.NewMetrics()
		md.CopyTo(cp)
		return s.d2c.next.ConsumeMetrics(ctx, cp)
	}
	return s.appendMetrics(ctx, md)
}

// appendMetrics is the cumulative-only path, also the delta converter's
// downstream consumer.
func (s *Store) appendMetrics(ctx context.Context, md pmetric.Metrics) error {
	app := s.app.appenderV2(ctx, true)
	conv, _ := s.convPool.Get().(*prometheusremotewrite.PrometheusConverter)
	if conv == nil {
		conv = prometheusremotewrite.NewPrometheusConverter(nil)
	}
	conv.Reset(app)
	annots, convErr := conv.FromMetrics(ctx, md, s.settings)
	conv.Reset(nil)
	s.convPool.Put(conv)

	if err := ctx.Err(); err != nil {
		_ = app.Rollback()
		return err
	}
	if app.fatal != nil {
		_ = app.Rollback()
		return fmt.Errorf("%w: metric store append: %w", store.ErrUnavailable, app.fatal)
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("%w: metric store commit: %w", store.ErrUnavailable, err)
	}
	if len(annots) > 0 {
		ws, _ := annots.AsStrings("", 10, 0)
		s.logger.Debug("OTLP metric translation warnings", "warnings", ws)
	}
	if app.refused == 0 && convErr == nil {
		return nil
	}
	// convErr names metrics the translator could not take (unspecified
	// temporality, unsupported type); it does not say how many points
	// they held, so they count as one rejection each at least.
	pe := &store.PartialError{Rejected: app.refused}
	switch {
	case convErr != nil && app.firstRefuse != nil:
		pe.Rejected++
		pe.Reason = fmt.Sprintf("%v; %d samples refused, first: %v", convErr, app.refused, app.firstRefuse)
	case convErr != nil:
		pe.Rejected++
		pe.Reason = convErr.Error()
	default:
		pe.Reason = fmt.Sprintf("%d samples refused by the metric store, first: %v", app.refused, app.firstRefuse)
	}
	return pe
}

func hasDelta(md pmetric.Metrics) bool {
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				var t pmetric.AggregationTemporality
				switch m.Type() {
				case pmetric.MetricTypeSum:
					t = m.Sum().AggregationTemporality()
				case pmetric.MetricTypeHistogram:
					t = m.Histogram().AggregationTemporality()
				case pmetric.MetricTypeExponentialHistogram:
					t = m.ExponentialHistogram().AggregationTemporality()
				}
				if t == pmetric.AggregationTemporalityDelta {
					return true
				}
			}
		}
	}
	return false
}

// deltaConverter runs the Collector's deltatocumulative processor in
// front of appendMetrics. It keeps a running total per stream in memory;
// streams idle for maxStale are forgotten (their next delta starts a new
// cumulative series, which PromQL sees as a counter reset).
type deltaConverter struct {
	next     processor.Metrics
	stopOnce sync.Once
}

const (
	deltaMaxStale   = time.Hour
	deltaMaxStreams = 1_000_000
)

func newDeltaConverter(next consumer.Metrics) (*deltaConverter, error) {
	fac := deltatocumulativeprocessor.NewFactory()
	cfg, ok := fac.CreateDefaultConfig().(*deltatocumulativeprocessor.Config)
	if !ok {
		return nil, errors.New("BUG: deltatocumulative config has an unexpected type")
	}
	cfg.MaxStale = deltaMaxStale
	cfg.MaxStreams = deltaMaxStreams
	set := processor.Settings{
		ID:                component.NewID(fac.Type()),
		TelemetrySettings: component.TelemetrySettings{MeterProvider: noop.NewMeterProvider()},
	}
	p, err := fac.CreateMetrics(context.Background(), set, cfg, next)
	if err != nil {
		return nil, fmt.Errorf("tsdb: delta-to-cumulative converter: %w", err)
	}
	if err := p.Start(context.Background(), nil); err != nil {
		return nil, fmt.Errorf("tsdb: start delta-to-cumulative converter: %w", err)
	}
	return &deltaConverter{next: p}, nil
}

func (d *deltaConverter) shutdown() error {
	var err error
	d.stopOnce.Do(func() { err = d.next.Shutdown(context.Background()) })
	return err
}
