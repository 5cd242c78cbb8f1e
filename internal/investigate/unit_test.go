package investigate

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestTemplate(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := Template(in); got != want {
			t.Errorf("Template(%q) = %q, want %q", in, got, want)
		}
	}
	f("sorry, too many clients already", "sorry, too many clients already")
	f("timeout after 30012ms on 10.0.0.7:5432", "timeout after <n>ms on <ip>")
	f("order 123e4567-e89b-12d3-a456-426614174000 failed", "order <uuid> failed")
	f("trace 4bf92f3577b34da6a3ce929d0e0e4736 lost", "trace <hex> lost")
	f("deadline accepted decade", "deadline accepted decade")
	f("ptr 0xc000123 nil", "ptr <hex> nil")
	f("2026-11-28 15:00:00 UTC:10.0.1.5(5432):app@db:[123]:FATAL:  x", "<ts>:<ip>(<n>):app@db:[<n>]:FATAL:  x")
}

func TestMessagePart(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := messagePart(in); got != want {
			t.Errorf("messagePart(%q) = %q, want %q", in, got, want)
		}
	}
	f("<ts>:<ip>(<n>):app@db:[<n>]:FATAL: sorry, too many clients already", "sorry, too many clients already")
	f("no marker here", "no marker here")
}

func TestHostIdentifier(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := hostIdentifier(in); got != want {
			t.Errorf("hostIdentifier(%q) = %q, want %q", in, got, want)
		}
	}
	f("db-1a2b3c.xyz.us-east-1.rds.amazonaws.com", "db-1a2b3c")
	f("db-1a2b3c.xyz.us-east-1.rds.amazonaws.com:5432", "db-1a2b3c")
	f("postgres://u:p@db-9.internal:5432/app?sslmode=off", "db-9")
	f("10.0.0.7:5432", "10.0.0.7")
	f("redis", "redis")
}

func TestClassify(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		got := ""
		if c := classify(in); c >= 0 {
			got = causeClasses[c].Name
		}
		if got != want {
			t.Errorf("classify(%q) = %q, want %q", in, got, want)
		}
	}
	f("sorry, too many clients already", "connection exhaustion")
	f("remaining connection slots are reserved for non-replication superuser and rds_reserved connections", "connection exhaustion")
	f("timeout exceeded when trying to connect", "connection exhaustion")
	f("context deadline exceeded", "timeout")
	f("Rate exceeded", "throttling")
	f("NullPointerException in PaymentHandler", "code defect")
	f("dial tcp 10.0.0.1:443: connect: connection refused", "dependency unreachable")
	f("FATAL: the database system is in recovery mode", "database restart")
	f("card declined", "")
}

func TestSeverityFromLine(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := severityFromLine(in); got != want {
			t.Errorf("severityFromLine(%q) = %q, want %q", in, got, want)
		}
	}
	f("x:[1]:FATAL:  sorry", "fatal")
	f("PANIC: could not write", "panic")
	f("LOG: checkpoint", "")
	f("ERRORS are words", "")
}

func TestDrain(t *testing.T) {
	d := NewDrain()
	d.Add("connection received: host=10.0.0.1 port=5000", "log")
	d.Add("connection received: host=10.0.0.2 port=6001", "log")
	d.Add("user alice logged in from web", "info")
	d.Add("user bob logged in from web", "info")
	c := d.Add("user carol logged in from web", "warn")
	if c.Template() != "user <*> logged in from web" || c.Count != 3 {
		t.Errorf("template %q count %d", c.Template(), c.Count)
	}
	if c.topSeverity() != "warn" {
		t.Errorf("severity %q", c.topSeverity())
	}
	if got := len(d.Clusters()); got != 2 {
		t.Errorf("%d clusters, want 2", got)
	}
	if d.Match("checkpoint complete") != nil {
		t.Error("unrelated line matched a cluster")
	}
	if m := d.Match("user dave logged in from web"); m != c {
		t.Error("similar line did not match")
	}
}

// TestRootCauses: the deepest error span is picked, and its dependency is
// found on the child it waited on but not on a sibling that finished early.
func TestRootCauses(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	base := time.Unix(1_700_000_000, 0)
	add := func(id, parent byte, name string, from, to time.Duration, errMsg string, attrs map[string]string) {
		s := ss.AppendEmpty()
		s.SetTraceID(pcommon.TraceID{1})
		s.SetSpanID(pcommon.SpanID{id})
		if parent != 0 {
			s.SetParentSpanID(pcommon.SpanID{parent})
		}
		s.SetName(name)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(base.Add(from)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(to)))
		if errMsg != "" {
			s.Status().SetCode(ptrace.StatusCodeError)
			s.Status().SetMessage(errMsg)
		}
		for k, v := range attrs {
			s.Attributes().PutStr(k, v)
		}
	}
	add(1, 0, "handler", 0, 1000*time.Millisecond, "boom", nil)
	add(2, 1, "early query", 0, 5*time.Millisecond, "", map[string]string{"server.address": "early-db.local"})
	add(3, 1, "pool.connect", 10*time.Millisecond, 1000*time.Millisecond, "timeout", nil)
	add(4, 3, "connect", 990*time.Millisecond, 999*time.Millisecond, "", map[string]string{"server.address": "main-db-12ab34.x.y:5432", "db.system.name": "postgresql"})
	rcs := rootCauses(td)
	if len(rcs) != 1 || rcs[0].name != "pool.connect" || rcs[0].dep != "main-db-12ab34" || rcs[0].sys != "postgresql" {
		t.Errorf("root causes %+v", rcs)
	}
}

// TestSteadyErrors: a service that always fails 5% of the time with the
// same message is not an incident.
func TestSteadyErrors(t *testing.T) {
	start, end := times()
	w := newWorld()
	w.noise = 0.05
	w.bookingService(start.Add(-30*time.Minute), end, 3, false, start)
	st, lst := w.open(t)
	rep, err := New(Config{Traces: st, Logs: lst, Metrics: dbMetrics(start.Add(-30*time.Minute), end, false, start)}).
		Investigate(context.Background(), Request{Service: "booking", Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Errorf("false alarm:\n%s", dump(rep))
	}
}
