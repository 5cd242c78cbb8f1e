package servicegraph

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

type discard struct{}

func (discard) AppenderV2(context.Context) storage.AppenderV2 { return discard{} }
func (discard) Append(storage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, storage.AppendV2Options) (storage.SeriesRef, error) {
	return 1, nil
}
func (discard) Commit() error   { return nil }
func (discard) Rollback() error { return nil }

// pairBatch builds 1,000 spans shaped like the demo's (~15 resource and ~12
// span attributes): 5 callers and 5 callees, 100 client/server pairs each
// way, plus database client spans and internal spans.
func pairBatch(end time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	res := func(svc string, r int) ptrace.SpanSlice {
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", svc)
		a.PutStr("service.version", "1.4.2")
		a.PutStr("service.instance.id", fmt.Sprintf("%s-%d", svc, r))
		a.PutStr("deployment.environment.name", "demo")
		a.PutStr("cloud.provider", "aws")
		a.PutStr("cloud.region", "us-east-1")
		a.PutStr("cloud.availability_zone", "us-east-1a")
		a.PutStr("cloud.account.id", "123456789012")
		a.PutStr("cloud.platform", "aws_ecs")
		a.PutStr("aws.ecs.task.family", svc)
		a.PutStr("aws.ecs.task.arn", fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/tickets/%032d", r))
		a.PutStr("aws.ecs.launchtype", "fargate")
		a.PutStr("telemetry.sdk.name", "opentelemetry")
		a.PutStr("telemetry.sdk.language", "go")
		a.PutStr("telemetry.sdk.version", "1.47.0")
		return rs.ScopeSpans().AppendEmpty().Spans()
	}
	span := func(ss ptrace.SpanSlice, kind ptrace.SpanKind, tid [16]byte, sid, parent [8]byte, i int) ptrace.Span {
		sp := ss.AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		sp.SetParentSpanID(parent)
		sp.SetName("GET /api/v1/tickets")
		sp.SetKind(kind)
		e := end.Add(time.Duration(i) * time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(e.Add(-time.Duration(1+i%300) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(e))
		sa := sp.Attributes()
		sa.PutStr("http.request.method", "GET")
		sa.PutStr("http.route", "/api/v1/tickets")
		sa.PutStr("url.path", fmt.Sprintf("/api/v1/tickets/%d", i))
		sa.PutStr("url.scheme", "https")
		sa.PutInt("http.response.status_code", 200)
		sa.PutStr("server.address", "tickets.example.com")
		sa.PutInt("server.port", 443)
		sa.PutStr("network.protocol.version", "1.1")
		sa.PutStr("user_agent.original", "loadgen/1.0")
		sa.PutStr("client.address", "10.0.1.17")
		sa.PutStr("ticket.event_id", fmt.Sprint(i%50))
		sa.PutBool("cache.hit", i%2 == 0)
		return sp
	}
	for r := range 5 {
		callers := res(fmt.Sprintf("caller-%d", r), r)
		callees := res(fmt.Sprintf("callee-%d", r), r)
		for i := range 100 {
			tid := [16]byte{byte(r), byte(i), 7}
			cid := [8]byte{byte(r), byte(i), 1}
			span(callers, ptrace.SpanKindClient, tid, cid, [8]byte{byte(r), byte(i), 9}, i)
			span(callees, ptrace.SpanKindServer, tid, [8]byte{byte(r), byte(i), 2}, cid, i)
		}
	}
	return td
}

// BenchmarkConsumeTraces measures the ingest-path cost per span of pairing.
func BenchmarkConsumeTraces(b *testing.B) {
	g, err := New(Config{}, discard{})
	if err != nil {
		b.Fatal(err)
	}
	td := pairBatch(time.Now().Add(-time.Minute))
	ctx := context.Background()
	n := td.SpanCount()
	b.ReportAllocs()
	for b.Loop() {
		if err := g.ConsumeTraces(ctx, td); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "spans/s")
}
