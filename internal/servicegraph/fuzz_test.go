package servicegraph

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/spanmetrics"
	"github.com/trenchcoat/trenchcoat/internal/spanmetrics/spantest"
)

// FuzzConsumeTraces feeds arbitrary OTLP (as JSON) to both generators:
// spans come from untrusted clients, so no input may panic or wedge them.
func FuzzConsumeTraces(f *testing.F) {
	var m ptrace.JSONMarshaler
	seed, err := m.MarshalTraces(spantest.Traces(spantest.Topology(time.Now().Add(-time.Hour), 2, 1)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"","spanId":"","kind":9,"endTimeUnixNano":"18446744073709551615"}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var u ptrace.JSONUnmarshaler
		td, err := u.UnmarshalTraces(data)
		if err != nil {
			return
		}
		app := spantest.NewAppendable()
		sm, err := spanmetrics.New(spanmetrics.Config{MaxSeries: 100}, app)
		if err != nil {
			t.Fatal(err)
		}
		sg, err := New(Config{MaxItems: 100}, app)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := sm.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
		if err := sg.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
		if err := sm.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sg.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
