package tsdb

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"
)

// metrics are the store's self-metrics. The TSDB registers its own
// prometheus_tsdb_* family on the same Registerer; these add what the
// operator of trenchcoat asks first: how much went in, how many series,
// and how much was refused and why.
type metrics struct {
	appended prometheus.Counter
	refused  *prometheus.CounterVec
}

// Refusal reasons, the label values of appends_refused_total.
const (
	reasonOutOfOrder = "out_of_order"
	reasonTooOld     = "too_old"
	reasonBounds     = "out_of_bounds"
	reasonDuplicate  = "duplicate"
	reasonOther      = "other"
)

func newMetrics(reg prometheus.Registerer, db *promtsdb.DB) (*metrics, error) {
	m := &metrics{
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trenchcoat_metric_store_samples_appended_total",
			Help: "Samples (floats and histograms) committed to the metric store.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trenchcoat_metric_store_appends_refused_total",
			Help: "Samples the metric store refused, by reason (out_of_order, too_old, out_of_bounds, duplicate, other).",
		}, []string{"reason"}),
	}
	for _, r := range []string{reasonOutOfOrder, reasonTooOld, reasonBounds, reasonDuplicate, reasonOther} {
		m.refused.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	series := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trenchcoat_metric_store_series",
		Help: "Series in the metric store's in-memory head.",
	}, func() float64 { return float64(db.Head().NumSeries()) })
	for _, c := range []prometheus.Collector{m.appended, m.refused, series} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("tsdb: register self-metrics: %w", err)
		}
	}
	return m, nil
}

// refusalReason classifies an append error. ok is false for errors that
// are not a refusal of the sample itself (I/O, closed store).
func refusalReason(err error) (reason string, ok bool) {
	switch {
	case errors.Is(err, storage.ErrOutOfOrderSample):
		return reasonOutOfOrder, true
	case errors.Is(err, storage.ErrTooOldSample):
		return reasonTooOld, true
	case errors.Is(err, storage.ErrOutOfBounds):
		return reasonBounds, true
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return reasonDuplicate, true
	}
	return reasonOther, false
}
