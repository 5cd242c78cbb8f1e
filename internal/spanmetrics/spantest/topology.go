package spantest

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Topology records, with the real SDK, n requests through the demo's
// shape, request i starting at base + i*100ms:
//
//	tickets-api (Lambda)  SERVER "GET /tickets" (root, http.route=/tickets)
//	├─ CLIENT "GET" ──────────► tickets-server (ECS) SERVER "GET /tickets"
//	│                            ├─ CLIENT "SELECT tickets" (PostgreSQL, no server side)
//	│                            └─ PRODUCER "orders publish" ──► tickets-orders (Lambda) CONSUMER "orders process"
//	└─ CLIENT "POST" to payments.example.com (uninstrumented, no server side)
//
// In request errAt (if 0 <= errAt < n) the SELECT and the root span fail.
// Spans are returned in the order they ended.
func Topology(base time.Time, n, errAt int) []sdktrace.ReadOnlySpan {
	rec := tracetest.NewSpanRecorder()
	tp := func(kv ...attribute.KeyValue) trace.Tracer {
		p := sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithSpanProcessor(rec),
			sdktrace.WithResource(resource.NewSchemaless(kv...)))
		return p.Tracer("spantest")
	}
	common := []attribute.KeyValue{
		attribute.String("cloud.provider", "aws"),
		attribute.String("cloud.region", "us-east-1"),
		attribute.String("deployment.environment.name", "demo"),
	}
	api := tp(append(common,
		attribute.String("service.name", "tickets-api"),
		attribute.String("cloud.platform", "aws_lambda"),
		attribute.String("faas.name", "tickets-api"))...)
	server := tp(append(common,
		attribute.String("service.name", "tickets-server"),
		attribute.String("cloud.platform", "aws_ecs"),
		attribute.String("cloud.availability_zone", "us-east-1a"),
		attribute.String("aws.ecs.task.family", "tickets-server"))...)
	orders := tp(append(common,
		attribute.String("service.name", "tickets-orders"),
		attribute.String("cloud.platform", "aws_lambda"),
		attribute.String("faas.name", "tickets-orders"))...)

	ms := func(t time.Time, d int) time.Time { return t.Add(time.Duration(d) * time.Millisecond) }
	for i := range n {
		t0 := base.Add(time.Duration(i) * 100 * time.Millisecond)
		fail := i == errAt
		ctx, root := api.Start(context.Background(), "GET /tickets", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithTimestamp(t0), trace.WithAttributes(
				attribute.String("http.route", "/tickets"), attribute.String("http.request.method", "GET")))
		_, call := api.Start(ctx, "GET", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(ms(t0, 1)),
			trace.WithAttributes(attribute.String("server.address", "tickets-server"), attribute.String("http.request.method", "GET")))

		sctx := trace.ContextWithRemoteSpanContext(context.Background(), call.SpanContext())
		sctx, srv := server.Start(sctx, "GET /tickets", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(ms(t0, 2)),
			trace.WithAttributes(attribute.String("http.route", "/tickets")))
		_, db := server.Start(sctx, "SELECT tickets", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(ms(t0, 3)),
			trace.WithAttributes(
				attribute.String("db.system.name", "postgresql"),
				attribute.String("db.namespace", "tickets"),
				attribute.String("server.address", "tickets-database"),
				attribute.Int("server.port", 5432)))
		if fail {
			db.RecordError(errors.New("connection pool exhausted"))
			db.SetStatus(codes.Error, "connection pool exhausted")
		}
		db.End(trace.WithTimestamp(ms(t0, 8)))
		_, pub := server.Start(sctx, "orders publish", trace.WithSpanKind(trace.SpanKindProducer), trace.WithTimestamp(ms(t0, 9)),
			trace.WithAttributes(attribute.String("messaging.system", "aws_sqs")))
		pub.End(trace.WithTimestamp(ms(t0, 11)))
		srv.End(trace.WithTimestamp(ms(t0, 27)))
		call.End(trace.WithTimestamp(ms(t0, 31)))

		octx := trace.ContextWithRemoteSpanContext(context.Background(), pub.SpanContext())
		_, con := orders.Start(octx, "orders process", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(ms(t0, 15)),
			trace.WithAttributes(attribute.String("messaging.system", "aws_sqs")))
		con.End(trace.WithTimestamp(ms(t0, 25)))

		_, pay := api.Start(ctx, "POST", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(ms(t0, 32)),
			trace.WithAttributes(attribute.String("server.address", "payments.example.com"), attribute.String("http.request.method", "POST")))
		pay.End(trace.WithTimestamp(ms(t0, 72)))
		if fail {
			root.SetStatus(codes.Error, "upstream failed")
		}
		root.End(trace.WithTimestamp(ms(t0, 75)))
	}
	return rec.Ended()
}

// Spans records, with the real SDK, one span of service per end time,
// named name, of the given kind, each lasting 10ms.
func Spans(service, name string, kind trace.SpanKind, ends ...time.Time) []sdktrace.ReadOnlySpan {
	rec := tracetest.NewSpanRecorder()
	p := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithSpanProcessor(rec),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	tr := p.Tracer("spantest")
	for _, end := range ends {
		_, s := tr.Start(context.Background(), name, trace.WithSpanKind(kind), trace.WithTimestamp(end.Add(-10*time.Millisecond)))
		s.End(trace.WithTimestamp(end))
	}
	return rec.Ended()
}
