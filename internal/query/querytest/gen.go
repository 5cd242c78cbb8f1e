package querytest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Zones are the availability zones of the generated data.
var Zones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

func traceID(r *rand.Rand) pcommon.TraceID {
	var id pcommon.TraceID
	for i := range id {
		id[i] = byte(r.IntN(256))
	}
	id[0] |= 1 // never all zero
	return id
}

func spanID(r *rand.Rand) pcommon.SpanID {
	var id pcommon.SpanID
	for i := range id {
		id[i] = byte(r.IntN(256))
	}
	id[0] |= 1
	return id
}

// GenTraces makes n traces starting within [start, start+span), shaped like
// the demo: tickets-api (Lambda) calls tickets-server (ECS, three zones),
// which queries the database; some requests fail with a pool timeout, some
// publish to tickets-orders, and a few traces lack their root span.
// The result is deterministic for a seed.
func GenTraces(seed uint64, n int, start time.Time, span time.Duration) ptrace.Traces {
	r := rand.New(rand.NewPCG(seed, 1))
	td := ptrace.NewTraces()
	res := func(svc, zone string) ptrace.SpanSlice {
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", svc)
		a.PutStr("cloud.region", "us-east-1")
		if zone != "" {
			a.PutStr("cloud.availability_zone", zone)
		}
		if svc == "tickets-server" {
			a.PutStr("cloud.platform", "aws_ecs")
			a.PutStr("aws.ecs.task.family", "tickets-server")
		} else {
			a.PutStr("cloud.platform", "aws_lambda")
			a.PutStr("faas.name", svc)
		}
		return rs.ScopeSpans().AppendEmpty().Spans()
	}
	routes := []string{"/tickets", "/tickets/{id}", "/orders"}
	for i := 0; i < n; i++ {
		tid := traceID(r)
		t0 := start.Add(time.Duration(r.Int64N(int64(span))))
		zone := Zones[r.IntN(len(Zones))]
		fail := r.IntN(5) == 0
		route := routes[r.IntN(len(routes))]
		dbDur := time.Duration(100+r.IntN(5000)) * time.Microsecond
		if fail {
			dbDur = 30 * time.Second
		}
		srvDur := dbDur + time.Duration(1+r.IntN(20))*time.Millisecond
		rootDur := srvDur + time.Duration(1+r.IntN(30))*time.Millisecond
		mk := func(ss ptrace.SpanSlice, parent pcommon.SpanID, name string, kind ptrace.SpanKind, at time.Time, d time.Duration) ptrace.Span {
			sp := ss.AppendEmpty()
			sp.SetTraceID(tid)
			sp.SetSpanID(spanID(r))
			sp.SetParentSpanID(parent)
			sp.SetName(name)
			sp.SetKind(kind)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(d)))
			return sp
		}
		api := res("tickets-api", "")
		var rootID pcommon.SpanID
		if i%17 == 5 {
			rootID = spanID(r) // the root was never received
		} else {
			root := mk(api, pcommon.SpanID{}, "POST "+route, ptrace.SpanKindServer, t0, rootDur)
			root.Attributes().PutStr("http.route", route)
			root.Attributes().PutBool("faas.coldstart", i%7 == 0)
			if fail {
				root.Status().SetCode(ptrace.StatusCodeError)
				root.Attributes().PutInt("http.response.status_code", 500)
			} else {
				root.Attributes().PutInt("http.response.status_code", 200)
			}
			rootID = root.SpanID()
		}
		cl := mk(api, rootID, "GET tickets-server", ptrace.SpanKindClient, t0.Add(time.Millisecond), srvDur)
		cl.Attributes().PutStr("server.address", "tickets-server")
		srv := res("tickets-server", zone)
		s := mk(srv, cl.SpanID(), "GET "+route, ptrace.SpanKindServer, t0.Add(2*time.Millisecond), srvDur-time.Millisecond)
		s.Attributes().PutStr("http.route", route)
		s.Attributes().PutDouble("pool.utilization", float64(r.IntN(100))/100)
		db := mk(srv, s.SpanID(), "SELECT tickets", ptrace.SpanKindClient, t0.Add(3*time.Millisecond), dbDur)
		db.Attributes().PutStr("db.system", "postgresql")
		db.Attributes().PutStr("db.namespace", "tickets")
		if fail {
			db.Status().SetCode(ptrace.StatusCodeError)
			db.Status().SetMessage("timeout acquiring connection after 30s")
			s.Status().SetCode(ptrace.StatusCodeError)
			s.Status().SetMessage("database unavailable")
			s.Attributes().PutInt("http.response.status_code", 503)
		} else {
			s.Status().SetCode(ptrace.StatusCodeOk)
			s.Attributes().PutInt("http.response.status_code", 200)
		}
		if route == "/orders" {
			p := mk(srv, s.SpanID(), "publish orders", ptrace.SpanKindProducer, t0.Add(4*time.Millisecond), time.Millisecond)
			c := mk(res("tickets-orders", ""), p.SpanID(), "process orders", ptrace.SpanKindConsumer, t0.Add(6*time.Millisecond), time.Duration(1+r.IntN(200))*time.Millisecond)
			mk(res("tickets-orders", ""), c.SpanID(), "charge", ptrace.SpanKindInternal, t0.Add(7*time.Millisecond), time.Millisecond).Attributes().PutStr("payment.provider", fmt.Sprint("p", r.IntN(3)))
		}
	}
	return td
}

// GenLogs makes n log records within [start, start+span): ECS application
// logs in logfmt, database logs in RDS's text format, Lambda logs in JSON,
// each resource with its log group.
func GenLogs(seed uint64, n int, start time.Time, span time.Duration) plog.Logs {
	r := rand.New(rand.NewPCG(seed, 2))
	ld := plog.NewLogs()
	type src struct {
		svc, zone, group string
		recs             plog.LogRecordSlice
	}
	var srcs []*src
	add := func(svc, zone, group string) {
		rl := ld.ResourceLogs().AppendEmpty()
		a := rl.Resource().Attributes()
		a.PutStr("service.name", svc)
		a.PutStr("cloud.region", "us-east-1")
		if zone != "" {
			a.PutStr("cloud.availability_zone", zone)
		}
		a.PutEmptySlice("aws.log.group.names").AppendEmpty().SetStr(group)
		srcs = append(srcs, &src{svc, zone, group, rl.ScopeLogs().AppendEmpty().LogRecords()})
	}
	for _, z := range Zones {
		add("tickets-server", z, "/ecs/tickets-server")
	}
	add("tickets-database", "", "/aws/rds/instance/tickets-database-1/postgresql")
	add("tickets-api", "", "/aws/lambda/tickets-api")
	levels := []string{"INFO", "INFO", "INFO", "WARN", "ERROR"}
	for i := 0; i < n; i++ {
		s := srcs[r.IntN(len(srcs))]
		lr := s.recs.AppendEmpty()
		at := start.Add(time.Duration(r.Int64N(int64(span))))
		if i%13 == 0 {
			lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(at)) // no event time
		} else {
			lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
		}
		lvl := levels[r.IntN(len(levels))]
		ms := r.IntN(900)
		status := []int{200, 200, 201, 404, 500}[r.IntN(5)]
		var body string
		switch s.svc {
		case "tickets-server":
			body = fmt.Sprintf(`level=%s msg="request done" route=/tickets status=%d duration_ms=%d`, lvl, status, ms)
			if lvl == "ERROR" {
				body = fmt.Sprintf(`level=ERROR msg="pool timeout" err="timeout acquiring connection" waited_ms=%d`, 30000+ms)
			}
		case "tickets-database":
			body = fmt.Sprintf("2026-11-28 12:00:00 UTC:10.0.1.%d(5432):app@tickets:[%d]:LOG:  duration: %d.%03d ms", r.IntN(255), 1000+r.IntN(9000), ms, r.IntN(1000))
			if lvl == "ERROR" {
				lvl = "FATAL"
				body = "2026-11-28 12:00:00 UTC::@:[4242]:FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute"
			}
		default:
			body = fmt.Sprintf(`{"level":%q,"msg":"invoke","cold":%t,"duration":%d,"req":{"path":"/tickets","status":%d}}`, lvl, r.IntN(4) == 0, ms, status)
		}
		lr.SetSeverityText(lvl)
		lr.Body().SetStr(body)
		lr.Attributes().PutStr("log.iostream", "stdout")
	}
	return ld
}
