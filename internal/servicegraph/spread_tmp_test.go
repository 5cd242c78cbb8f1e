package servicegraph

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/spanmetrics"
	"github.com/trenchcoat/trenchcoat/internal/spanmetrics/spantest"
)

func TestSpreadTmp(t *testing.T) {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	now := time.Now()
	for i := range 100 {
		sp := ss.AppendEmpty()
		sp.SetName(fmt.Sprint(i))
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Duration(i) * 100 * time.Minute)))
	}
	app := spantest.NewAppendable()
	sm, _ := spanmetrics.New(spanmetrics.Config{MaxSeries: 100}, app)
	start := time.Now()
	sm.ConsumeTraces(context.Background(), td)
	sm.Shutdown(context.Background())
	t.Log(time.Since(start), app.Count())
}
