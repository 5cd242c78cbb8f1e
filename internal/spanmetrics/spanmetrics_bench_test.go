package spanmetrics

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// discard is a storage that accepts and forgets, so benchmarks measure the
// generator, not a store.
type discard struct{}

func (discard) AppenderV2(context.Context) storage.AppenderV2 { return discard{} }
func (discard) Append(storage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, storage.AppendV2Options) (storage.SeriesRef, error) {
	return 1, nil
}
func (discard) Commit() error   { return nil }
func (discard) Rollback() error { return nil }

// DemoBatch builds a batch shaped like the demo's: 10 resources of 100
// spans, ~15 resource attributes and ~12 span attributes, ending around end.
func DemoBatch(end time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	services := []string{"tickets-api", "tickets-server", "tickets-orders", "tickets-payments", "tickets-notify"}
	for r := range 10 {
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		svc := services[r%len(services)]
		a.PutStr("service.name", svc)
		a.PutStr("service.version", "1.4.2")
		a.PutStr("service.instance.id", fmt.Sprintf("%s-%d", svc, r))
		a.PutStr("deployment.environment.name", "demo")
		a.PutStr("cloud.provider", "aws")
		a.PutStr("cloud.region", "us-east-1")
		a.PutStr("cloud.availability_zone", fmt.Sprintf("us-east-1%c", 'a'+r%3))
		a.PutStr("cloud.account.id", "123456789012")
		a.PutStr("cloud.platform", "aws_ecs")
		a.PutStr("aws.ecs.task.family", svc)
		a.PutStr("aws.ecs.task.arn", fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/tickets/%032d", r))
		a.PutStr("aws.ecs.launchtype", "fargate")
		a.PutStr("telemetry.sdk.name", "opentelemetry")
		a.PutStr("telemetry.sdk.language", "go")
		a.PutStr("telemetry.sdk.version", "1.47.0")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
		for i := range 100 {
			sp := ss.Spans().AppendEmpty()
			var tid [16]byte
			tid[0], tid[1] = byte(r), byte(i)
			sp.SetTraceID(tid)
			sp.SetSpanID([8]byte{byte(r), byte(i), 1})
			sp.SetParentSpanID([8]byte{byte(r), byte(i), 2})
			route := fmt.Sprintf("/api/v1/tickets/%d", i%8)
			sp.SetName("GET " + route)
			sp.SetKind(ptrace.SpanKind(1 + i%5))
			e := end.Add(time.Duration(i) * time.Millisecond)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(e.Add(-time.Duration(1+i%300) * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(e))
			if i%17 == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
			sa := sp.Attributes()
			sa.PutStr("http.request.method", "GET")
			sa.PutStr("http.route", route)
			sa.PutStr("url.path", fmt.Sprintf("/api/v1/tickets/%d/%d", i%8, i))
			sa.PutStr("url.scheme", "https")
			sa.PutInt("http.response.status_code", 200)
			sa.PutStr("server.address", "tickets.example.com")
			sa.PutInt("server.port", 443)
			sa.PutStr("network.protocol.version", "1.1")
			sa.PutStr("user_agent.original", "loadgen/1.0")
			sa.PutStr("client.address", "10.0.1.17")
			sa.PutStr("ticket.event_id", fmt.Sprint(i%50))
			sa.PutBool("cache.hit", i%2 == 0)
		}
	}
	return td
}

// BenchmarkConsumeTraces measures the ingest-path cost per span; compare
// spans/s with span ingest (the generator must cost <= 15% of it).
func BenchmarkConsumeTraces(b *testing.B) {
	g, err := New(Config{}, discard{})
	if err != nil {
		b.Fatal(err)
	}
	td := DemoBatch(time.Now().Add(-time.Minute))
	ctx := context.Background()
	n := td.SpanCount()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := g.ConsumeTraces(ctx, td); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkAdvance measures writing one interval of every series (the
// background cost, paid per interval rather than per span).
func BenchmarkAdvance(b *testing.B) {
	clk := time.Now().Add(-2 * time.Hour)
	// Series must stay live for the whole run, not go stale after 15m.
	g, err := New(Config{StaleAfter: 1e6 * time.Hour, now: func() time.Time { return clk }}, discard{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := g.ConsumeTraces(ctx, DemoBatch(clk.Add(-time.Minute))); err != nil {
		b.Fatal(err)
	}
	series := g.reg.Len()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clk = clk.Add(15 * time.Second)
		if err := g.reg.Advance(ctx, math.MaxInt64); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(series), "series")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*series), "ns/series")
}
