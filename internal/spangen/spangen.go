// Package spangen makes synthetic spans shaped like the demo's, for
// benchmarks and tests of the ingest path and the stores.
package spangen

import (
	"fmt"
	"math/rand"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Spans builds a request of n spans shaped like the demo's: traces of 5
// spans, ~15 resource attributes, ~12 span attributes.
func Spans(seed int64, n int, now time.Time) ptrace.Traces {
	r := rand.New(rand.NewSource(seed))
	td := ptrace.NewTraces()
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	for task := 0; task < 4; task++ {
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", "tickets-server")
		a.PutStr("service.version", "1.4.2")
		a.PutStr("deployment.environment.name", "production")
		a.PutStr("cloud.provider", "aws")
		a.PutStr("cloud.platform", "aws_ecs")
		a.PutStr("cloud.region", "us-east-1")
		a.PutStr("cloud.availability_zone", zones[task%3])
		a.PutStr("cloud.account.id", "123456789012")
		a.PutStr("cloud.resource_id", fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/tickets/%08x", r.Uint32()))
		a.PutStr("aws.ecs.task.arn", fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/tickets/%08x", r.Uint32()))
		a.PutStr("aws.ecs.task.family", "tickets-server")
		a.PutStr("aws.ecs.cluster.arn", "arn:aws:ecs:us-east-1:123456789012:cluster/tickets")
		a.PutStr("aws.ecs.launchtype", "fargate")
		a.PutStr("telemetry.sdk.language", "go")
		a.PutStr("telemetry.sdk.version", "1.47.0")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("tickets-server")
		for t := 0; t < n/4/5; t++ {
			var tid pcommon.TraceID
			r.Read(tid[:])
			var parent pcommon.SpanID
			start := now.Add(-time.Duration(r.Intn(60000)) * time.Millisecond)
			for j := 0; j < 5; j++ {
				sp := ss.Spans().AppendEmpty()
				var sid pcommon.SpanID
				r.Read(sid[:])
				sp.SetTraceID(tid)
				sp.SetSpanID(sid)
				sp.SetParentSpanID(parent)
				parent = sid
				sp.SetName([]string{"POST /:endpoint", "request handler", "pg-pool.connect", "pg.connect", "pg.query:INSERT"}[j])
				sp.SetKind([]ptrace.SpanKind{ptrace.SpanKindServer, ptrace.SpanKindInternal, ptrace.SpanKindInternal, ptrace.SpanKindClient, ptrace.SpanKindClient}[j])
				st := start.Add(time.Duration(j) * time.Millisecond)
				sp.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
				sp.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Duration(1+r.Intn(200)) * time.Millisecond)))
				if r.Intn(20) == 0 {
					sp.Status().SetCode(ptrace.StatusCodeError)
					sp.Status().SetMessage("sorry, too many clients already")
				}
				sa := sp.Attributes()
				sa.PutStr("http.request.method", "POST")
				sa.PutStr("http.route", "/:endpoint")
				sa.PutInt("http.response.status_code", 200)
				sa.PutStr("url.path", fmt.Sprintf("/book/%d", r.Intn(500)))
				sa.PutStr("server.address", "tickets-database-3f9a1c.c8xk2.us-east-1.rds.amazonaws.com")
				sa.PutInt("server.port", 5432)
				sa.PutStr("db.system.name", "postgresql")
				sa.PutStr("db.namespace", "ticketsdb")
				sa.PutStr("network.peer.address", fmt.Sprintf("10.0.%d.%d", r.Intn(4), r.Intn(255)))
				sa.PutStr("user_agent.original", "Mozilla/5.0")
				sa.PutInt("tickets.count", int64(1+r.Intn(4)))
				sa.PutStr("thread.name", "worker")
			}
		}
	}
	return td
}
