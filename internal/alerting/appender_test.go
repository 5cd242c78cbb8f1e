package alerting

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// onlyV1 hides the TSDB's AppenderV2 so that the adapter is used.
type onlyV1 struct{ a storage.Appendable }

func (o onlyV1) Appender(ctx context.Context) storage.Appender { return o.a.Appender(ctx) }

func TestAppendableV1Adapter(t *testing.T) {
	db := openDB(t)
	a := appendableV2(onlyV1{db})
	if _, ok := a.(v1Appendable); !ok {
		t.Fatalf("adapter not used: %T", a)
	}
	app := a.AppenderV2(context.Background())
	l := labels.FromStrings("__name__", "x")
	if _, err := app.Append(0, l, 0, 1000, 42, nil, nil, storage.AOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	q, err := db.Querier(0, 2000)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "x"))
	if !ss.Next() {
		t.Fatal("no series")
	}
	it := ss.At().Iterator(nil)
	if it.Next() != chunkenc.ValFloat {
		t.Fatal("no sample")
	}
	if ts, v := it.At(); ts != 1000 || v != 42 {
		t.Errorf("sample %d %v", ts, v)
	}
	if _, ok := appendableV2(db).(v1Appendable); ok {
		t.Error("TSDB should be used natively")
	}
}
