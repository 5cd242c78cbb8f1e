package investigate

import (
	"context"
	"strings"
	"testing"
	"time"
)

func exhaustionWorld(t testing.TB, incident bool) (*Detective, time.Time, time.Time) {
	t.Helper()
	start, end := times()
	bstart := start.Add(-30 * time.Minute)
	onset := start.Add(5 * time.Minute)
	w := newWorld()
	w.bookingService(bstart, start, 3, false, onset)
	if incident {
		w.bookingService(start, onset, 3, false, onset)
		w.bookingService(onset, end, 6, true, onset)
	} else {
		w.bookingService(start, end, 3, false, onset)
	}
	w.frontDoor(bstart, end)
	w.dbLogs(bstart, end, incident, onset)
	st, lst := w.open(t)
	d := New(Config{Traces: st, Logs: lst, Metrics: dbMetrics(bstart, end, incident, onset)})
	return d, start, end
}

// TestConnectionExhaustion is the end-to-end case: a service whose
// database runs out of connection slots.
func TestConnectionExhaustion(t *testing.T) {
	d, start, end := exhaustionWorld(t, true)
	rep, err := d.Investigate(context.Background(), Request{SLO: "booking-success", Service: "booking", Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(dump(rep))
	if rep.Cause != "connection exhaustion" || rep.Resource != "orders-db-7c41e2" {
		t.Errorf("cause %q resource %q, want connection exhaustion of orders-db-7c41e2\n%s", rep.Cause, rep.Resource, dump(rep))
	}
	for _, want := range []string{"orders-db-7c41e2", "too many clients", "connection slots", "30s", "FATAL", "aws_rds_database_connections_sum", "scaled out"} {
		if !strings.Contains(rep.Diagnosis, want) {
			t.Errorf("diagnosis lacks %q:\n%s", want, rep.Diagnosis)
		}
	}
	// Every check that has something to say said it.
	for _, c := range []string{CheckErrors, CheckMessages, CheckRootCause, CheckDurations, CheckLogs, CheckMetrics, CheckChanges} {
		if len(findingsOf(rep, c)) == 0 {
			t.Errorf("no %s finding\n%s", c, dump(rep))
		}
	}
	rc := findingsOf(rep, CheckRootCause)
	if len(rc) == 0 || rc[0].Facts["resource"] == "" {
		t.Errorf("root cause without dependency: %+v", rc)
	}
	for _, f := range findingsOf(rep, CheckMetrics) {
		if strings.Contains(f.Title, "cpu") || strings.Contains(f.Title, "lambda") {
			t.Errorf("metric finding on a steady or unrelated series: %s", f.Title)
		}
	}
	if len(rep.Errors) > 0 {
		t.Errorf("check errors: %v", rep.Errors)
	}
	for _, f := range rep.Findings {
		if f.Link == "" || f.Score <= 0 || f.Score > 1 || len(f.Evidence) == 0 {
			t.Errorf("finding lacks link, score or evidence: %+v", f)
		}
	}
}

// TestHealthy: the same world without the incident must raise nothing.
func TestHealthy(t *testing.T) {
	d, start, end := exhaustionWorld(t, false)
	for _, svc := range []string{"booking", "front-door", ""} {
		rep, err := d.Investigate(context.Background(), Request{Service: svc, Start: start, End: end})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Findings) != 0 || rep.Cause != "" {
			t.Errorf("service %q: false alarm:\n%s", svc, dump(rep))
		}
	}
}

func TestBadDeploy(t *testing.T) {
	start, end := times()
	bstart := start.Add(-30 * time.Minute)
	onset := start.Add(10 * time.Minute)
	w := newWorld()
	w.paymentsDeploy(bstart, start, false, onset)
	w.paymentsDeploy(start, end, true, onset)
	w.frontDoor(bstart, end)
	st, lst := w.open(t)
	d := New(Config{Traces: st, Logs: lst})
	rep, err := d.Investigate(context.Background(), Request{Service: "payments", Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(dump(rep))
	if rep.Cause != "bad deploy" || rep.Resource != "payments" {
		t.Errorf("cause %q resource %q, want bad deploy of payments\n%s", rep.Cause, rep.Resource, dump(rep))
	}
	for _, want := range []string{"1.5.0", "NullPointerException in PaymentHandler", "roll back"} {
		if !strings.Contains(rep.Diagnosis, want) {
			t.Errorf("diagnosis lacks %q:\n%s", want, rep.Diagnosis)
		}
	}
	var zone, version bool
	for _, f := range findingsOf(rep, CheckAttributes) {
		zone = zone || f.Facts["value"] == "eu-west-1c"
		version = version || f.Facts["value"] == "1.5.0"
	}
	if !zone || !version {
		t.Errorf("attribute comparison missed the zone (%v) or version (%v):\n%s", zone, version, dump(rep))
	}
	for _, f := range findingsOf(rep, CheckRootCause) {
		if f.Facts["resource"] != "" {
			t.Errorf("root cause blames a dependency the handler did not wait on: %+v", f)
		}
	}
	if len(findingsOf(rep, CheckDurations)) != 0 {
		t.Errorf("duration finding without a duration change:\n%s", dump(rep))
	}
	// Without the service named, the detective finds it by its errors.
	rep2, err := d.Investigate(context.Background(), Request{Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Cause != "bad deploy" {
		t.Errorf("without service: cause %q", rep2.Cause)
	}
}

func TestInvalidRequest(t *testing.T) {
	d := New(Config{})
	if _, err := d.Investigate(context.Background(), Request{}); err == nil {
		t.Error("no trace reader: want error")
	}
}

func dump(rep *Report) string {
	var b strings.Builder
	b.WriteString("diagnosis: " + rep.Diagnosis + "\n")
	for _, f := range rep.Findings {
		b.WriteString("  [" + f.Check + "] " + f.Title + "\n")
	}
	for _, e := range rep.Errors {
		b.WriteString("  error: " + e + "\n")
	}
	return b.String()
}

// TestThrottledDependency: a third, different incident; the cause is named
// from the data (the invoked function), not from the endpoint's host.
func TestThrottledDependency(t *testing.T) {
	start, end := times()
	w := newWorld()
	w.gatewayThrottled(start.Add(-30*time.Minute), end, true, start.Add(3*time.Minute))
	st, lst := w.open(t)
	rep, err := New(Config{Traces: st, Logs: lst}).Investigate(context.Background(), Request{Service: "gateway", Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cause != "throttling" || rep.Resource != "notify-fn" {
		t.Errorf("cause %q resource %q, want throttling of notify-fn\n%s", rep.Cause, rep.Resource, dump(rep))
	}
	if !strings.Contains(rep.Diagnosis, "Rate exceeded") {
		t.Errorf("diagnosis lacks the message:\n%s", rep.Diagnosis)
	}
}
