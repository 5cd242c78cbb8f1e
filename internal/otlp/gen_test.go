package otlp

import (
	"encoding/binary"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// realisticTraces builds n spans shaped like the demo's: one resource
// with ~15 attributes, spans with ~12 attributes, some with an event.
func realisticTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	for k, v := range map[string]string{
		"service.name": "tickets-server", "service.namespace": "tickets", "service.version": "2.14.1",
		"service.instance.id": "5e1c7a2b-44d3-4c1e-9d7a-0b7f4b9b1c2d", "deployment.environment.name": "production",
		"cloud.provider": "aws", "cloud.platform": "aws_ecs", "cloud.region": "us-east-1",
		"cloud.availability_zone": "us-east-1b", "cloud.account.id": "123456789012",
		"aws.ecs.task.family": "tickets-server", "aws.ecs.launchtype": "fargate",
		"host.arch": "arm64", "telemetry.sdk.language": "go", "telemetry.sdk.version": "1.47.0",
	} {
		ra.PutStr(k, v)
	}
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	ss.Scope().SetVersion("0.72.0")
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	spans := ss.Spans()
	spans.EnsureCapacity(n)
	for i := range n {
		sp := spans.AppendEmpty()
		var tid [16]byte
		binary.BigEndian.PutUint64(tid[:8], uint64(i/8+1))
		binary.BigEndian.PutUint64(tid[8:], 0x9e3779b97f4a7c15)
		var sid [8]byte
		binary.BigEndian.PutUint64(sid[:], uint64(i+1))
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		if i%8 != 0 {
			var psid [8]byte
			binary.BigEndian.PutUint64(psid[:], uint64(i/8*8+1))
			sp.SetParentSpanID(psid)
		}
		sp.SetName("GET /api/tickets/{id}")
		sp.SetKind(ptrace.SpanKindServer)
		st := start.Add(time.Duration(i) * time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Duration(5+i%40) * time.Millisecond)))
		a := sp.Attributes()
		a.EnsureCapacity(12)
		a.PutStr("http.request.method", "GET")
		a.PutStr("http.route", "/api/tickets/{id}")
		a.PutStr("url.path", fmt.Sprintf("/api/tickets/%d", 1000+i))
		a.PutStr("url.scheme", "https")
		a.PutInt("http.response.status_code", 200)
		a.PutStr("server.address", "tickets.example.com")
		a.PutInt("server.port", 443)
		a.PutStr("client.address", "10.0.3.17")
		a.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36")
		a.PutStr("network.protocol.version", "1.1")
		a.PutInt("http.response.body.size", int64(512+i%2048))
		a.PutBool("tickets.cache_hit", i%3 == 0)
		if i%10 == 0 {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage("pq: remaining connection slots are reserved")
			ev := sp.Events().AppendEmpty()
			ev.SetName("exception")
			ev.SetTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Millisecond)))
			ev.Attributes().PutStr("exception.type", "*pq.Error")
			ev.Attributes().PutStr("exception.message", "remaining connection slots are reserved")
		}
	}
	return td
}

func realisticLogs(n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "tickets-database")
	rl.Resource().Attributes().PutStr("aws.log.group.names", "/aws/rds/instance/tickets-database-1/postgresql")
	sl := rl.ScopeLogs().AppendEmpty()
	for i := range n {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)))
		lr.SetSeverityNumber(plog.SeverityNumberError)
		lr.SetSeverityText("ERROR")
		lr.Body().SetStr(fmt.Sprintf("FATAL: remaining connection slots are reserved (pid %d)", 4000+i))
		lr.Attributes().PutStr("db.namespace", "tickets")
		lr.Attributes().PutInt("pid", int64(4000+i))
	}
	return ld
}

func mustProto(td ptrace.Traces) []byte {
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		panic(err)
	}
	return b
}

func mustJSON(td ptrace.Traces) []byte {
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		panic(err)
	}
	return b
}

// Hand-encoded protobuf, for what pdata refuses to produce (ids of the
// wrong length, a million attributes without pdata's quadratic Put).
func pbBytes(b []byte, field protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// rawSpanRequest wraps encoded span fields into an ExportTraceServiceRequest.
func rawSpanRequest(spanFields []byte) []byte {
	scopeSpans := pbBytes(nil, 2, spanFields)    // ScopeSpans.spans
	resourceSpans := pbBytes(nil, 2, scopeSpans) // ResourceSpans.scope_spans
	return pbBytes(nil, 1, resourceSpans)        // ExportTraceServiceRequest.resource_spans
}

func rawSpan(traceID, spanID []byte, name string, extra []byte) []byte {
	var sp []byte
	sp = pbBytes(sp, 1, traceID)
	sp = pbBytes(sp, 2, spanID)
	sp = pbBytes(sp, 5, []byte(name))
	return append(sp, extra...)
}

// rawBoolAttr encodes a KeyValue{key, bool true} as Span.attributes.
func rawBoolAttr(b []byte, key string) []byte {
	var kv []byte
	kv = pbBytes(kv, 1, []byte(key))
	kv = pbBytes(kv, 2, []byte{0x10, 0x01}) // AnyValue.bool_value = true
	return pbBytes(b, 9, kv)
}

var (
	goodTraceID = []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	goodSpanID  = []byte{1, 2, 3, 4, 5, 6, 7, 8}
)

// nestedTraces returns one span whose attribute "deep" nests depth levels
// (depth 1 is a plain string value).
func nestedTraces(depth int) ptrace.Traces {
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID(goodTraceID))
	sp.SetSpanID(pcommon.SpanID(goodSpanID))
	sp.SetName("nested")
	v := sp.Attributes().PutEmpty("deep")
	for range depth - 1 {
		v = v.SetEmptyMap().PutEmpty("k")
	}
	v.SetStr("leaf")
	return td
}
