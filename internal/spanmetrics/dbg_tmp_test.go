package spanmetrics

import (
	"context"
	"testing"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/spanmetrics/spantest"
)

func TestDbgTmp(t *testing.T) {
	now := time.Now()
	app := spantest.NewAppendable()
	g, _ := New(Config{}, app)
	g.Start(context.Background())
	base := now.Add(-3 * time.Hour).Truncate(iv).Add(time.Second)
	for i := range 2 {
		td := spantest.Traces(spantest.Topology(base.Add(time.Duration(i)*time.Minute), 5, 2))
		g.ConsumeTraces(context.Background(), td)
	}
	g.Shutdown(context.Background())
	for _, k := range app.Names() {
		if len(k) > 30 && k[:30] == "traces_spanmetrics_calls_total" {
			ss := app.Samples(k)
			for _, s := range ss {
				t.Log(k[len(k)-60:], time.UnixMilli(s.T).Sub(base), s.V)
			}
			break
		}
	}
}
