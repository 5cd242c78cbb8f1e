package tsdb

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

func sdkmetricUnit(u string) interface {
	metric.Int64CounterOption
	metric.Float64HistogramOption
	metric.Int64UpDownCounterOption
	metric.Float64ObservableGaugeOption
} {
	return metric.WithUnit(u)
}

func sdkmetricAttrs(kv ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributes(kv...)
}

func sdkmetricCallback(v float64) metric.Float64ObservableGaugeOption {
	return metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
		o.Observe(v)
		return nil
	})
}
