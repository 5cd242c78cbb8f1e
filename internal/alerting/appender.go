package alerting

import (
	"context"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// appendableV2 gives the rules package the AppenderV2 it writes through.
// The TSDB implements it natively; anything that only has the older
// Appendable is adapted sample by sample.
func appendableV2(a storage.Appendable) storage.AppendableV2 {
	if v2, ok := a.(storage.AppendableV2); ok {
		return v2
	}
	return v1Appendable{a}
}

type v1Appendable struct{ a storage.Appendable }

func (v v1Appendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return v1Appender{v.a.Appender(ctx)}
}

type v1Appender struct{ app storage.Appender }

func (v v1Appender) Append(ref storage.SeriesRef, ls labels.Labels, _, t int64, val float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if h != nil || fh != nil {
		return v.app.AppendHistogram(ref, ls, t, h, fh)
	}
	return v.app.Append(ref, ls, t, val)
}

func (v v1Appender) Commit() error   { return v.app.Commit() }
func (v v1Appender) Rollback() error { return v.app.Rollback() }
