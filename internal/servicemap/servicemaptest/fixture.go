// Package servicemaptest builds, for tests, the real wiring behind the
// service API: a metric store fed by the real span-metrics and
// service-graph generators, a columnar span store, and the PromQL engine,
// loaded with spans of a known topology (spantest.Topology).
package servicemaptest

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/trace"

	"github.com/trenchcoat/trenchcoat/internal/query/prom"
	"github.com/trenchcoat/trenchcoat/internal/servicegraph"
	"github.com/trenchcoat/trenchcoat/internal/servicemap"
	"github.com/trenchcoat/trenchcoat/internal/spanmetrics"
	"github.com/trenchcoat/trenchcoat/internal/spanmetrics/spantest"
	"github.com/trenchcoat/trenchcoat/internal/store/columnar"
	"github.com/trenchcoat/trenchcoat/internal/store/tsdb"
)

// Requests is the number of requests through the topology; request
// ErrAt fails (its database call and its root span).
const (
	Requests = 20
	ErrAt    = 3
)

// Weird is a service name with quotes and backslashes; it has WeirdSpans
// SERVER spans named "op" of 10ms.
const (
	Weird      = `we"ird\svc'` + "\n"
	WeirdSpans = 3
)

// Fixture is the loaded wiring. Range covers every sample and span
// exactly: from just before the zero sample that opens each series to the
// interval holding the spans, so increase() needs no extrapolation.
type Fixture struct {
	Map   *servicemap.Map
	Range servicemap.Range
	Base  time.Time // start of request 0
	// Engine and Queryable, to compare with plain PromQL.
	Engine    *promql.Engine
	Queryable storage.Queryable
}

// New loads the fixture; everything is closed by t.Cleanup.
func New(t testing.TB) *Fixture {
	t.Helper()
	ctx := context.Background()
	ms, err := tsdb.Open(tsdb.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ms.Close() })
	cs, err := columnar.Open(columnar.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	api, err := prom.New(prom.Config{}, ms.Queryable(), ms.Appendable())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Close() })

	sm, err := spanmetrics.New(spanmetrics.Config{}, ms.AppendableV2())
	if err != nil {
		t.Fatal(err)
	}
	sg, err := servicegraph.New(servicegraph.Config{}, ms.AppendableV2())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []interface{ Start(context.Context) error }{sm, sg} {
		if err := g.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	const iv = 15 * time.Second
	aligned := time.Now().Add(-10 * time.Minute).Truncate(iv)
	base := aligned.Add(time.Second)
	spans := spantest.Topology(base, Requests, ErrAt)
	spans = append(spans, spantest.Spans(Weird, "op", trace.SpanKindServer,
		base.Add(time.Second), base.Add(2*time.Second), base.Add(3*time.Second))...)
	td := spantest.Traces(spans)
	if err := cs.WriteTraces(ctx, td); err != nil {
		t.Fatal(err)
	}
	for _, g := range []interface {
		ConsumeTraces(context.Context, ptrace.Traces) error
	}{sm, sg} {
		if err := g.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
	}
	// Shutdown flushes every counted interval (and ends the wait of the
	// unpaired client spans, so the database and payments edges exist).
	if err := sm.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sg.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	m, err := servicemap.New(servicemap.Config{Engine: api.Engine(), Queryable: ms.Queryable(), Traces: cs})
	if err != nil {
		t.Fatal(err)
	}
	return &Fixture{Map: m, Base: base, Engine: api.Engine(), Queryable: ms.Queryable(),
		Range: servicemap.Range{Start: aligned.Add(-time.Millisecond), End: aligned.Add(iv), Step: iv}}
}
