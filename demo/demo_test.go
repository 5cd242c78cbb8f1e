package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is an io.Writer safe for Run's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// findings summarises a recording against the walkthrough's signals.
type findings struct {
	msgs          map[string]int
	poolTimeouts  []time.Duration // pg-pool.connect spans that timed out
	fatal         int             // FATAL lines in the RDS log group with a slots message
	panics        int
	maxConns      float64
	unitless      bool
	edgeLambdaSrv bool // a Lambda client span is the parent of a tickets-server server span
	edgeSrvDB     bool // tickets-server has PostgreSQL client spans with a peer address
	srvTotal      int  // tickets-server server spans since the incident began
	srvErrors     int
	srvMedian     time.Duration
}

// analyse looks at what has arrived, ignoring items before from.
func analyse(spans []rspan, logs []rlog, points []rpoint, group string, incident, from time.Time) findings {
	f := findings{msgs: map[string]int{}, unitless: true}
	spans = slices.DeleteFunc(spans, func(s rspan) bool { return s.start < from.UnixNano() })
	logs = slices.DeleteFunc(logs, func(l rlog) bool { return l.t < from.UnixNano() })
	points = slices.DeleteFunc(points, func(p rpoint) bool { return p.t < from.UnixNano() })
	byID := make(map[string]rspan, len(spans))
	for _, s := range spans {
		byID[s.spanID] = s
	}
	var durs []time.Duration
	for _, s := range spans {
		if s.err {
			f.msgs[s.msg]++
		}
		if s.name == "pg-pool.connect" && s.msg == errTimeout {
			f.poolTimeouts = append(f.poolTimeouts, time.Duration(s.end-s.start))
		}
		if s.service == serverName && s.kind == "Server" {
			if p, ok := byID[s.parent]; ok && p.kind == "Client" && strings.HasPrefix(p.service, "tickets-") && p.service != serverName {
				f.edgeLambdaSrv = true
			}
			if s.start >= incident.UnixNano() {
				f.srvTotal++
				if s.err {
					f.srvErrors++
				} else if s.name == "POST /:endpoint" {
					durs = append(durs, time.Duration(s.end-s.start))
				}
			}
		}
		if s.service == serverName && s.kind == "Client" && s.attrs["db.system.name"] == "postgresql" && s.attrs["db.system"] == "postgresql" &&
			strings.HasSuffix(s.attrs["server.address"], ".us-east-1.rds.amazonaws.com") && s.attrs["db.namespace"] == dbName {
			f.edgeSrvDB = true
		}
	}
	if len(durs) > 0 {
		slices.Sort(durs)
		f.srvMedian = durs[len(durs)/2]
	}
	for _, l := range logs {
		if l.group != group {
			continue
		}
		if l.sevText == "FATAL" && l.sev == 21 && (strings.Contains(l.body, errTooMany) || strings.Contains(l.body, errReserved)) {
			f.fatal++
		}
		if l.sevText == "PANIC" {
			f.panics++
		}
	}
	for _, p := range points {
		if strings.Contains(p.name, "!unit:") {
			f.unitless = false
		}
		if p.name == "aws_rds_database_connections_sum" && p.value > f.maxConns {
			f.maxConns = p.value
		}
	}
	return f
}

func (f findings) errRatio() float64 {
	if f.srvTotal == 0 {
		return 0
	}
	return float64(f.srvErrors) / float64(f.srvTotal)
}

func TestSimIncident(t *testing.T) {
	rec := newRecorder(t)
	var out syncBuffer
	cfg := Config{
		OTLPEndpoint: rec.addr, Sim: true, Speed: 60, Rate: 150, Seed: 7,
		IncidentAfter: 30 * time.Second, CrashAfter: 3 * time.Minute, Backfill: -1, Out: &out,
	}
	st, _ := loadState("", cfg.Seed)
	start := time.Now()
	incident := start.Add(cfg.IncidentAfter)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()

	ready := func(f findings) bool {
		return f.msgs[errReserved] > 0 && f.msgs[errTooMany] > 0 && f.msgs[errTimeout] > 0 && f.msgs[errRecovery] > 0 &&
			f.fatal > 0 && f.panics > 0 && f.maxConns >= maxConns && f.edgeLambdaSrv && f.edgeSrvDB
	}
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		if ready(analyseRec(rec, st.logGroup(), incident)) {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	f := analyseRec(rec, st.logGroup(), incident)
	t.Logf("out:\n%s", out.String())
	t.Logf("messages: %v; timeouts %d; fatal %d; panics %d; max conns %g; error ratio %.2f (%d spans); median booking %s",
		f.msgs, len(f.poolTimeouts), f.fatal, f.panics, f.maxConns, f.errRatio(), f.srvTotal, f.srvMedian)
	for _, m := range []string{errReserved, errTooMany, errTimeout, errRecovery} {
		if f.msgs[m] == 0 {
			t.Errorf("no error span with %q", m)
		}
	}
	if len(f.poolTimeouts) == 0 {
		t.Error("no pg-pool.connect timeouts")
	}
	for _, d := range f.poolTimeouts {
		if d != 30*time.Second {
			t.Fatalf("pg-pool.connect timed out after %s, want exactly 30s", d)
		}
	}
	if f.fatal == 0 || f.panics == 0 {
		t.Errorf("log group %s: %d FATAL slot lines, %d PANIC lines", st.logGroup(), f.fatal, f.panics)
	}
	if f.maxConns < maxConns {
		t.Errorf("connections peaked at %g, want %d", f.maxConns, maxConns)
	}
	if !f.unitless {
		t.Error("a CloudWatch series has a unit")
	}
	if !f.edgeLambdaSrv || !f.edgeSrvDB {
		t.Errorf("edges: lambda->tickets-server %v, tickets-server->database %v", f.edgeLambdaSrv, f.edgeSrvDB)
	}
	if r := f.errRatio(); r <= 0.05 {
		t.Errorf("tickets-server error ratio in the incident %.3f, want > 5%%", r)
	}
	if f.srvMedian < time.Second {
		t.Errorf("median booking duration in the incident %s, want seconds", f.srvMedian)
	}
	for _, want := range []string{"sim:", "tickets-server: 3 tasks"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func analyseRec(r *recorder, group string, incident time.Time) findings {
	spans, logs, points := r.snapshot()
	return analyse(spans, logs, points, group, incident, time.Time{})
}

func TestBackfillDeterministic(t *testing.T) {
	end := time.Date(2026, 11, 28, 15, 0, 0, 0, time.UTC)
	run := func() ([]string, findings) {
		rec := newRecorder(t)
		h, err := newHub(rec.addr, 0)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := loadState("", 42)
		cfg := Config{Backfill: 24 * time.Minute, Seed: 42, CrashAfter: 5 * time.Minute}
		cfg.setDefaults()
		sc := scenarios["peak-sale"](Tuning{SurgeFactor: cfg.SurgeFactor, CrashAfter: cfg.CrashAfter})
		ctx := context.Background()
		if err := backfill(ctx, h, st, sc, cfg, end); err != nil {
			t.Fatal(err)
		}
		h.shutdown(ctx)
		spans, logs, points := rec.snapshot()
		for _, s := range spans {
			if s.start >= end.Add(time.Minute).UnixNano() {
				t.Fatalf("backfilled span %s starts after the end", s.name)
			}
		}
		return rec.digest(), analyse(spans, logs, points, st.logGroup(), end.Add(-12*time.Minute), time.Time{})
	}
	a, fa := run()
	b, _ := run()
	if len(a) != len(b) {
		t.Fatalf("two backfills with one seed differ: %d and %d items", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("two backfills with one seed differ:\n%s\n%s", a[i], b[i])
		}
	}
	t.Logf("%d items; messages %v; error ratio %.2f", len(a), fa.msgs, fa.errRatio())
	if fa.msgs[errReserved] == 0 || fa.msgs[errTimeout] == 0 || fa.errRatio() <= 0.05 {
		t.Errorf("the backfill's incident is missing: %v, ratio %.3f", fa.msgs, fa.errRatio())
	}
}

func TestScenarios(t *testing.T) {
	if got := Scenarios(); !slices.Equal(got, []string{"bad-deploy", "peak-sale"}) {
		t.Fatalf("Scenarios() = %v", got)
	}
	tu := Tuning{SurgeFactor: 10, CrashAfter: time.Minute}
	ps := scenarios["peak-sale"](tu)
	if c := ps.At(-time.Second); c.Load != 1 || c.Crash {
		t.Errorf("before the incident: %+v", c)
	}
	if c := ps.At(5 * time.Minute); c.Load < 8 {
		t.Errorf("surge load %g", c.Load)
	}
	if !ps.At(time.Minute+time.Second).Crash || ps.At(time.Minute+crashWindow).Crash {
		t.Error("crash window wrong")
	}
	if c := scenarios["bad-deploy"](tu).At(time.Minute); c.Bad == nil || c.Bad.AZ != "us-east-1b" {
		t.Errorf("bad deploy: %+v", c)
	}
	err := Run(context.Background(), Config{OTLPEndpoint: "127.0.0.1:1", Scenario: "nope", Sim: true})
	if err == nil || !strings.Contains(err.Error(), "unknown scenario") {
		t.Errorf("unknown scenario: %v", err)
	}
}

func TestParsePGLine(t *testing.T) {
	f := func(line, level, want string, ok bool) {
		t.Helper()
		got, gotOK := parsePGLine(line)
		if gotOK != ok || (ok && (got.level != level || got.text != want)) {
			t.Errorf("parsePGLine(%q) = %+v, %v", line, got, gotOK)
		}
	}
	f("2026-11-28 15:01:02 UTC:127.0.0.1(51234):tickets@ticketsdb:[12345]:FATAL:  sorry, too many clients already",
		"FATAL", "2026-11-28 15:01:02 UTC:127.0.0.1(51234):tickets@ticketsdb:[12345]:FATAL:  sorry, too many clients already", true)
	f("2026-11-28 15:01:02 UTC:127.0.0.1(51234):tickets@ticketsdb:[12345]:FATAL:  remaining connection slots are reserved for non-replication superuser connections",
		"FATAL", "2026-11-28 15:01:02 UTC:127.0.0.1(51234):tickets@ticketsdb:[12345]:FATAL:  "+errReserved, true)
	f("2026-11-28 15:01:02 UTC::@:[400]:LOG:  database system is ready to accept connections",
		"LOG", "2026-11-28 15:01:02 UTC::@:[400]:LOG:  database system is ready to accept connections", true)
	f("2026-11-28 15:01:02 UTC:[local]:rdsadmin@postgres:[77]:PANIC:  out of memory", "PANIC", "2026-11-28 15:01:02 UTC:[local]:rdsadmin@postgres:[77]:PANIC:  out of memory", true)
	f("\tcontinuation", "", "", false)
	f("garbage", "", "", false)

	g := func(err error, want string) {
		t.Helper()
		if got := pgErrorText(err); got != want {
			t.Errorf("pgErrorText(%v) = %q, want %q", err, got, want)
		}
	}
	g(context.DeadlineExceeded, errTimeout)
	g(errString("failed to connect to `user=tickets database=ticketsdb`: server error: FATAL: sorry, too many clients already (SQLSTATE 53300)"), errTooMany)
	g(errString("FATAL: remaining connection slots are reserved for non-replication superuser connections (SQLSTATE 53300)"), errReserved)
}

type errString string

func (e errString) Error() string { return string(e) }

func TestShutdownHubTwice(t *testing.T) {
	rec := newRecorder(t)
	h, err := newHub(rec.addr, 1)
	if err != nil {
		t.Fatal(err)
	}
	h.shutdown(context.Background())
	h.shutdown(context.Background())
}

// TestLiveIncident runs the real thing: PostgreSQL, HTTP servers, pools.
func TestLiveIncident(t *testing.T) {
	if err := postgresAvailable(defaultPGBinDir); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if testing.Short() {
		t.Skip("skipping the real incident in -short mode")
	}
	rec := newRecorder(t)
	dir := t.TempDir()
	t.Cleanup(func() {
		if target, err := os.Readlink(filepath.Join(dir, "postgres")); err == nil {
			os.RemoveAll(filepath.Dir(target))
		}
	})
	var out syncBuffer
	cfg := Config{
		OTLPEndpoint: rec.addr, DataDir: dir, Seed: 3, Out: &out,
		Backfill: 10 * time.Minute, IncidentAfter: 3 * time.Second, CrashAfter: 30 * time.Second,
		AcquireTimeout: 3 * time.Second, ScaleInterval: 3 * time.Second, MetricInterval: 4 * time.Second, SurgeFactor: 14,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- Run(ctx, cfg) }()

	for i := 0; i < 600 && !strings.Contains(out.String(), "postgres:"); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	st, err := loadState(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	postmaster := 0
	var f findings
	deadline := time.Now().Add(110 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(2 * time.Second)
		if postmaster == 0 {
			if b, err := os.ReadFile(filepath.Join(dir, "postgres", "postmaster.pid")); err == nil {
				postmaster, _ = strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
			}
		}
		spans, logs, points := rec.snapshot()
		f = analyse(spans, logs, points, st.logGroup(), start.Add(cfg.IncidentAfter), start)
		if (f.msgs[errReserved] > 0 || f.msgs[errTooMany] > 0) && f.fatal > 0 && len(f.poolTimeouts) > 0 && f.msgs[errRecovery] > 0 {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("out:\n%s", out.String())
	t.Logf("messages: %v; timeouts %v; fatal %d; max conns %g; error ratio %.2f (%d)", f.msgs, len(f.poolTimeouts), f.fatal, f.maxConns, f.errRatio(), f.srvTotal)
	if f.msgs[errReserved] == 0 && f.msgs[errTooMany] == 0 {
		t.Error("no span carries PostgreSQL's connection-slot error")
	}
	if f.fatal == 0 {
		t.Error("no FATAL slot line in the RDS log group")
	}
	if len(f.poolTimeouts) == 0 {
		t.Error("no pool acquire timeouts")
	}
	for _, d := range f.poolTimeouts {
		if d < cfg.AcquireTimeout {
			t.Errorf("pool timeout after %s < %s", d, cfg.AcquireTimeout)
		}
	}
	if !f.edgeLambdaSrv || !f.edgeSrvDB {
		t.Errorf("edges: lambda->tickets-server %v, tickets-server->database %v", f.edgeLambdaSrv, f.edgeSrvDB)
	}
	if f.maxConns < maxConns-reservedSU {
		t.Errorf("connections peaked at %g, want at least %d", f.maxConns, maxConns-reservedSU)
	}
	if r := f.errRatio(); r <= 0.05 {
		t.Errorf("tickets-server error ratio in the incident %.3f, want > 5%%", r)
	}
	if f.msgs[errRecovery] == 0 {
		t.Log("no span saw the recovery mode (the crash recovery can be quicker than any connection attempt)")
	}
	if postmaster == 0 {
		t.Fatal("never saw postmaster.pid")
	}
	if !strings.Contains(out.String(), "tickets-server: 3 tasks") || !strings.Contains(out.String(), "port ") {
		t.Errorf("output:\n%s", out.String())
	}
	if left := processesInGroup(postmaster); len(left) > 0 {
		t.Errorf("postgres processes left after Run: %v", left)
	}

	// A second run resumes: no initdb, no backfill.
	pgv, _ := os.Stat(filepath.Join(dir, "postgres", "PG_VERSION"))
	var out2 syncBuffer
	cfg.Out = &out2
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { done <- Run(ctx2, cfg) }()
	for i := 0; i < 60 && !strings.Contains(out2.String(), "load:"); i++ {
		time.Sleep(500 * time.Millisecond)
	}
	cancel2()
	if err := <-done; err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if s := out2.String(); strings.Contains(s, "backfill:") || !strings.Contains(s, "postgres:") {
		t.Errorf("second run output:\n%s", s)
	}
	if pgv2, _ := os.Stat(filepath.Join(dir, "postgres", "PG_VERSION")); !pgv2.ModTime().Equal(pgv.ModTime()) {
		t.Error("the second run re-initialised PostgreSQL")
	}
}

// processesInGroup lists the processes whose process group is pgid.
func processesInGroup(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fs := strings.Fields(string(b[i+1:]))
		if len(fs) > 3 && (fs[3] == strconv.Itoa(pgid) || pid == pgid) && fs[0] != "Z" {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// TestLiveDefaults runs the live world with the default timings for
// $DEMO_LONG seconds and reports what it saw; for a look, not for CI.
func TestLiveDefaults(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("DEMO_LONG"))
	if secs == 0 || postgresAvailable(defaultPGBinDir) != nil {
		t.Skip("set DEMO_LONG=seconds to run")
	}
	rec := newRecorder(t)
	dir := t.TempDir()
	t.Cleanup(func() {
		if target, err := os.Readlink(filepath.Join(dir, "postgres")); err == nil {
			os.RemoveAll(filepath.Dir(target))
		}
	})
	var out syncBuffer
	cfg := Config{OTLPEndpoint: rec.addr, DataDir: dir, Out: &out, Backfill: -1, IncidentAfter: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer cancel()
	start := time.Now()
	if err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	st, _ := loadState(dir, 0)
	f := analyseRec(rec, st.logGroup(), start.Add(cfg.IncidentAfter))
	var long []string
	for _, d := range f.poolTimeouts {
		long = append(long, d.Round(time.Millisecond).String())
	}
	t.Logf("out:\n%s", out.String())
	t.Logf("messages: %v; timeouts %v; fatal %d; max conns %g; error ratio %.2f (%d); median booking %s",
		f.msgs, long[:min(len(long), 10)], f.fatal, f.maxConns, f.errRatio(), f.srvTotal, f.srvMedian)
}

func TestFallbackToSim(t *testing.T) {
	rec := newRecorder(t)
	var out syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := Run(ctx, Config{OTLPEndpoint: rec.addr, DataDir: t.TempDir(), Backfill: -1, Speed: 10, Out: &out, pgBinDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "falling back to --sim") || !strings.Contains(out.String(), "sim:") {
		t.Errorf("output:\n%s", out.String())
	}
	if spans, _, _ := rec.snapshot(); len(spans) == 0 {
		t.Error("the simulated world sent nothing")
	}
}
