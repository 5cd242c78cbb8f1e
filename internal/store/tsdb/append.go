package tsdb

import (
	"context"
	"errors"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"
)

// appendable hands out appenders that count what they commit and refuse,
// and that record metric metadata (type, unit, help) passed with V2
// appends, for /api/v1/metadata.
type appendable struct {
	db   *promtsdb.DB
	m    *metrics
	meta *metadataIndex
}

var (
	_ storage.Appendable   = (*appendable)(nil)
	_ storage.AppendableV2 = (*appendable)(nil)
)

func (a *appendable) Appender(ctx context.Context) storage.Appender {
	return &appenderV1{Appender: a.db.Appender(ctx), m: a.m}
}

func (a *appendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return a.appenderV2(ctx, false)
}

// appenderV2 returns a V2 appender. A lenient one (the OTLP path) counts
// and skips samples the TSDB refuses (too old, duplicate, invalid
// histogram) so that one bad point does not reject the rest of a batch;
// its refused field tells the caller how many were skipped.
func (a *appendable) appenderV2(ctx context.Context, lenient bool) *appenderV2 {
	return &appenderV2{inner: a.db.AppenderV2(ctx), m: a.m, meta: a.meta, lenient: lenient}
}

type appenderV2 struct {
	inner   storage.AppenderV2
	m       *metrics
	meta    *metadataIndex
	lenient bool

	pending    float64
	lastFamily string // family whose metadata was recorded last, to skip the map lookup

	refused     int64
	firstRefuse error
	fatal       error // a non-refusal error: the batch cannot be committed
}

var _ storage.ExemplarAppenderV2 = (*appenderV2)(nil)

func (a *appenderV2) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if opts.MetricFamilyName != "" && opts.MetricFamilyName != a.lastFamily && !opts.Metadata.IsEmpty() {
		a.lastFamily = a.meta.set(opts.MetricFamilyName, opts.Metadata)
	}
	ref, err := a.inner.Append(ref, ls, st, t, v, h, fh, opts)
	if err == nil {
		a.pending++
		return ref, nil
	}
	var partial *storage.AppendPartialError
	if errors.As(err, &partial) {
		// Only exemplars failed; the sample itself is in.
		a.pending++
		if a.lenient {
			return ref, nil
		}
		return ref, err
	}
	reason, isRefusal := refusalReason(err)
	var herr histogram.Error
	if !isRefusal && !errors.As(err, &herr) {
		if a.fatal == nil {
			a.fatal = err
		}
		return ref, err
	}
	a.m.refused.WithLabelValues(reason).Inc()
	if !a.lenient {
		return ref, err
	}
	if a.firstRefuse == nil {
		a.firstRefuse = err
	}
	a.refused++
	return 0, nil
}

func (a *appenderV2) AppendExemplars(ref storage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (storage.SeriesRef, error) {
	ea, ok := a.inner.(storage.ExemplarAppenderV2)
	if !ok {
		return ref, nil
	}
	return ea.AppendExemplars(ref, ls, es)
}

func (a *appenderV2) Commit() error {
	err := a.inner.Commit()
	if err == nil {
		a.m.appended.Add(a.pending)
	}
	a.pending = 0
	return err
}

func (a *appenderV2) Rollback() error {
	a.pending = 0
	return a.inner.Rollback()
}

// appenderV1 wraps the older appender interface, which the generators use;
// everything but the sample appends passes straight through.
type appenderV1 struct {
	storage.Appender
	m       *metrics
	pending float64
}

func (a *appenderV1) count(ref storage.SeriesRef, err error) (storage.SeriesRef, error) {
	if err == nil {
		a.pending++
		return ref, nil
	}
	if reason, ok := refusalReason(err); ok {
		a.m.refused.WithLabelValues(reason).Inc()
	}
	return ref, err
}

func (a *appenderV1) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	return a.count(a.Appender.Append(ref, l, t, v))
}

func (a *appenderV1) AppendHistogram(ref storage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return a.count(a.Appender.AppendHistogram(ref, l, t, h, fh))
}

func (a *appenderV1) Commit() error {
	err := a.Appender.Commit()
	if err == nil {
		a.m.appended.Add(a.pending)
	}
	a.pending = 0
	return err
}

func (a *appenderV1) Rollback() error {
	a.pending = 0
	return a.Appender.Rollback()
}
