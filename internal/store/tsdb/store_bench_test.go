package tsdb

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// benchBatch is one OTLP request: 40 counters and gauges x 25 attribute
// sets, plus 10 classic histograms x 10 sets (12 buckets each).
func benchBatch() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "tickets-server")
	rm.Resource().Attributes().PutStr("service.instance.id", "task-1")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for i := range 40 {
		m := ms.AppendEmpty()
		m.SetName("bench.metric." + strconv.Itoa(i))
		var dps pmetric.NumberDataPointSlice
		if i%2 == 0 {
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dps = s.DataPoints()
		} else {
			dps = m.SetEmptyGauge().DataPoints()
		}
		for j := range 25 {
			dp := dps.AppendEmpty()
			dp.Attributes().PutStr("route", "/r"+strconv.Itoa(j))
			dp.SetDoubleValue(float64(j))
		}
	}
	bounds := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	for i := range 10 {
		m := ms.AppendEmpty()
		m.SetName("bench.duration." + strconv.Itoa(i))
		m.SetUnit("s")
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for j := range 10 {
			dp := h.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("route", "/r"+strconv.Itoa(j))
			dp.ExplicitBounds().FromRaw(bounds)
			dp.BucketCounts().FromRaw([]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
			dp.SetCount(78)
			dp.SetSum(12.5)
		}
	}
	return md
}

func setTimestamps(md pmetric.Metrics, ts pcommon.Timestamp) {
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := range ms.Len() {
		m := ms.At(i)
		switch m.Type() {
		case pmetric.MetricTypeSum:
			for j := range m.Sum().DataPoints().Len() {
				m.Sum().DataPoints().At(j).SetTimestamp(ts)
			}
		case pmetric.MetricTypeGauge:
			for j := range m.Gauge().DataPoints().Len() {
				m.Gauge().DataPoints().At(j).SetTimestamp(ts)
			}
		case pmetric.MetricTypeHistogram:
			for j := range m.Histogram().DataPoints().Len() {
				m.Histogram().DataPoints().At(j).SetTimestamp(ts)
			}
		}
	}
}

// BenchmarkWriteMetricsOTLP measures OTLP metric ingest into the store
// (translation, append, commit to WAL), reported as samples/s.
func BenchmarkWriteMetricsOTLP(b *testing.B) {
	s := openStore(b, Config{})
	md := benchBatch()
	ctx := context.Background()
	base := time.Now().Add(-24 * time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		setTimestamps(md, pcommon.NewTimestampFromTime(base.Add(time.Duration(i)*time.Second)))
		if err := s.WriteMetrics(ctx, md); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(testutil.ToFloat64(s.metrics.appended)/b.Elapsed().Seconds(), "samples/s")
}
