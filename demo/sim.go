package demo

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	otellog "go.opentelemetry.io/otel/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

var expf = math.Exp

// spansPerRequest is about how many spans one front-door request makes,
// counting the order it may queue; it turns Config.Rate into requests.
const spansPerRequest = 8

// backfillRate is the backfill's requests per second at normal load: enough
// for smooth rates and ratios, little enough to send 6 hours in seconds.
const backfillRate = 0.5

// simWorld generates the whole world with explicit timestamps: the backfill
// and --sim use it. Everything random comes from one seeded generator and
// happens on one goroutine, so a seed gives the same world.
type simWorld struct {
	h        *hub
	st       *state
	sc       Scenario
	cfg      Config
	r        *rnd
	rate     float64 // requests per (simulated) second at normal load
	incident time.Time

	tasks     []*simTask
	nextTask  int
	lastScale time.Time
	version   map[string]string // AZ -> deployed version
	fns       map[string]*lambdaFn
	pressure  float64
	demand    float64 // connections the pools want
	conns     float64 // connections the database holds
	dbLog     otellog.Logger
	pmPID     int
	crashed   time.Time // start of the current crash episode
	nextCkpt  time.Time
	nextMet   time.Time
	nextReap  time.Time
	srv       srvStats
}

// srvStats accumulate over one metric period.
type srvStats struct{ requests, errors, reads, writes float64 }

type simTask struct {
	id, az, version, ip string
	tp                  *sdktrace.TracerProvider
	tracer              trace.Tracer
}

func newSimWorld(h *hub, st *state, sc Scenario, cfg Config, seed int64, rate float64, start time.Time) *simWorld {
	w := &simWorld{
		h: h, st: st, sc: sc, cfg: cfg, r: newRnd(seed, 0x5eed), rate: rate,
		version: map[string]string{}, lastScale: start,
		nextCkpt: start.Add(5 * time.Minute), nextMet: start, nextReap: start,
	}
	w.fns = newLambdaFns(h, w.r, 1)
	w.pmPID = 400 + w.r.IntN(500)
	w.dbLog = h.loggerProvider(rdsResource(st)).Logger(instrumentationScope.Name)
	for _, az := range zones {
		w.version[az] = serverVer
		w.addTask(az)
	}
	return w
}

func (w *simWorld) addTask(az string) {
	id := w.r.Hex(16)
	t := &simTask{id: id, az: az, version: w.version[az], ip: fmt.Sprintf("10.0.%d.%d", 16*(1+w.azIndex(az)), 10+w.r.IntN(200))}
	t.tp = w.h.tracerProvider(ecsResource(id, az, t.version))
	t.tracer = t.tp.Tracer(instrumentationScope.Name, trace.WithInstrumentationVersion(instrumentationScope.Version))
	w.tasks = append(w.tasks, t)
}

func (w *simWorld) azIndex(az string) int {
	for i, z := range zones {
		if z == az {
			return i
		}
	}
	return 0
}

// close flushes and retires every provider the world made.
func (w *simWorld) close(ctx context.Context) {
	w.h.flush(ctx)
}

// step advances the world by dt from t.
func (w *simWorld) step(ctx context.Context, t time.Time, dt time.Duration) {
	c := w.sc.At(t.Sub(w.incident))
	w.deploy(t, c)
	w.autoscale(t, c)
	w.database(t, c)

	n := w.poisson(w.rate * offered(t, c) * dt.Seconds())
	offs := make([]time.Duration, n)
	for i := range offs {
		offs[i] = time.Duration(w.r.Float64() * float64(dt))
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	for i, off := range offs {
		w.request(ctx, t.Add(off), c, i)
	}
	if !t.Before(w.nextCkpt) {
		w.nextCkpt = t.Add(5 * time.Minute)
		w.pgLog(t, "", "", "", w.pmPID+3, "LOG", "checkpoint starting: time")
		w.pgLog(t.Add(2*time.Second), "", "", "", w.pmPID+3, "LOG",
			fmt.Sprintf("checkpoint complete: wrote %d buffers (%.1f%%); 0 WAL file(s) added, 0 removed, 0 recycled; write=%.3f s, sync=0.002 s, total=%.3f s", 20+w.r.IntN(300), w.r.Float64()*2, 1+w.r.Float64(), 1.1+w.r.Float64()))
	}
	if !t.Before(w.nextReap) {
		w.nextReap = t.Add(time.Minute)
		for _, name := range fnOrder {
			w.fns[name].reap(t, 10*time.Minute)
		}
	}
	if !t.Before(w.nextMet) {
		w.nextMet = t.Add(w.cfg.MetricInterval)
		w.metrics(ctx, t)
	}
}

var fnOrder = []string{"tickets-api", "tickets-orders", "tickets-payments", "tickets-notify"}

func (w *simWorld) poisson(mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 30 {
		return max(0, int(mean+math.Sqrt(mean)*w.r.Norm()+0.5))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= w.r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// deploy rolls a bad version out to (or back from) one AZ: its tasks are
// replaced, as an ECS deployment does.
func (w *simWorld) deploy(t time.Time, c Conditions) {
	for _, az := range zones {
		want := serverVer
		if c.Bad != nil && c.Bad.AZ == az {
			want = c.Bad.Version
		}
		if w.version[az] == want {
			continue
		}
		w.version[az] = want
		var keep []*simTask
		replaced := 0
		for _, tk := range w.tasks {
			if tk.az == az {
				w.h.retireAsync(tk.tp)
				replaced++
				continue
			}
			keep = append(keep, tk)
		}
		w.tasks = keep
		for range replaced {
			w.addTask(az)
		}
	}
}

// autoscale is ECS target tracking on CPU: out fast, in slowly.
func (w *simWorld) autoscale(t time.Time, c Conditions) {
	// Pressure is offered load relative to what the hot row lets through.
	w.pressure = c.Load * (0.3 + 0.7*c.BookingShare*c.HotShare) / 3
	if t.Sub(w.lastScale) < w.cfg.ScaleInterval {
		return
	}
	cpu := w.cpu()
	switch {
	case cpu > 70 && len(w.tasks) < 10:
		w.lastScale = t
		w.addTask(zones[w.nextTask%len(zones)])
		w.nextTask++
	case cpu < 30 && len(w.tasks) > 3 && t.Sub(w.lastScale) > 5*time.Minute:
		w.lastScale = t
		last := w.tasks[len(w.tasks)-1]
		w.tasks = w.tasks[:len(w.tasks)-1]
		w.h.retireAsync(last.tp)
	}
}

func (w *simWorld) cpu() float64 {
	return math.Min(99, 12+70*w.pressure*3/float64(len(w.tasks)))
}

// appSlots is what non-superusers can hold: the rest is reserved, and
// rdsadmin holds one.
const appSlots = maxConns - reservedSU - 1

// database moves the connection count and plays the crash episode.
func (w *simWorld) database(t time.Time, c Conditions) {
	use := 1 + 9*clamp((w.pressure-0.5)/0.8, 0, 1)
	w.demand = float64(len(w.tasks)) * use
	target := 1 + math.Min(w.demand, appSlots)
	if w.demand > appSlots {
		target = maxConns // the monitoring sessions take the reserved slots too
	}
	if c.Crash {
		target = 0
	}
	w.conns += (target - w.conns) * 0.3
	if c.Crash && w.crashed.IsZero() {
		w.crashed = t
		w.crashLogs(t)
	}
	if !c.Crash && !w.crashed.IsZero() {
		w.crashed = time.Time{}
		w.pgLog(t, "", "", "", w.pmPID+50, "LOG", "redo done at 0/3A1F2B8 system usage: CPU: user: 0.01 s, system: 0.00 s, elapsed: 0.02 s")
		w.pgLog(t.Add(40*time.Millisecond), "", "", "", w.pmPID, "LOG", "database system is ready to accept connections")
	}
}

func (w *simWorld) crashLogs(t time.Time) {
	victim := 20000 + w.r.IntN(9000)
	at := func(ms int) time.Time { return t.Add(time.Duration(ms) * time.Millisecond) }
	remote := w.tasks[0].ip + fmt.Sprintf("(%d)", 30000+w.r.IntN(30000))
	w.pgLog(t, remote, "tickets", dbName, victim, "PANIC", "out of memory")
	w.pgLog(t, remote, "tickets", dbName, victim, "DETAIL", `Failed on request of size 8192 in memory context "ExecutorState".`)
	w.pgLog(at(5), "", "", "", w.pmPID, "LOG", fmt.Sprintf("server process (PID %d) was terminated by signal 6: Aborted", victim))
	w.pgLog(at(5), "", "", "", w.pmPID, "DETAIL", "Failed process was running: INSERT INTO bookings (event_id, user_id) VALUES ($1, $2)")
	w.pgLog(at(6), "", "", "", w.pmPID, "LOG", "terminating any other active server processes")
	for i := range min(int(w.conns), 12) {
		tk := w.tasks[i%len(w.tasks)]
		w.pgLog(at(7+i), fmt.Sprintf("%s(%d)", tk.ip, 30000+w.r.IntN(30000)), "tickets", dbName, 20000+w.r.IntN(9000), "WARNING", errCrashed)
	}
	w.pgLog(at(60), "", "", "", w.pmPID, "LOG", "all server processes terminated; reinitializing")
	w.pgLog(at(90), "", "", "", w.pmPID+50, "LOG", "database system was interrupted; last known up at "+t.Add(-3*time.Minute).UTC().Format("2006-01-02 15:04:05 UTC"))
	w.pgLog(at(95), "", "", "", w.pmPID+50, "LOG", "database system was not properly shut down; automatic recovery in progress")
	w.pgLog(at(100), "", "", "", w.pmPID+50, "LOG", "redo starts at 0/3A0C1D0")
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// pgLog emits one line of the database's log, as RDS writes it.
func (w *simWorld) pgLog(t time.Time, remote, user, db string, pid int, sev, msg string) {
	emitPGLine(w.dbLog, t, pgLinePrefix(t, remote, user, db, pid)+sev+":  "+msg, sev)
}

func emitPGLine(l otellog.Logger, t time.Time, line, sev string) {
	var rec otellog.Record
	rec.SetTimestamp(t)
	rec.SetObservedTimestamp(t)
	num, text := pgSeverity(sev)
	rec.SetSeverity(num)
	rec.SetSeverityText(text)
	rec.SetBody(attribute.StringValue(line))
	l.Emit(context.Background(), rec)
}

// pgSeverity maps a PostgreSQL message level to OpenTelemetry's.
func pgSeverity(level string) (otellog.Severity, string) {
	switch level {
	case "PANIC":
		return otellog.SeverityFatal4, "PANIC"
	case "FATAL":
		return otellog.SeverityFatal, "FATAL"
	case "ERROR":
		return otellog.SeverityError, "ERROR"
	case "WARNING":
		return otellog.SeverityWarn, "WARNING"
	case "NOTICE":
		return otellog.SeverityInfo2, "NOTICE"
	case "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3", "DEBUG4", "DEBUG5":
		return otellog.SeverityDebug, level
	default: // LOG, INFO, DETAIL, HINT, STATEMENT, CONTEXT
		return otellog.SeverityInfo, level
	}
}

// outcome is what happens to one request inside tickets-server.
type outcome struct {
	err        string        // status message; "" for success
	badDeploy  bool          // failed in the handler, before the database
	poolWait   time.Duration // in pg-pool.connect
	newConn    bool          // pg.connect under pg-pool.connect
	connectDur time.Duration
	connErr    bool // the error came from pg.connect
	queryDur   time.Duration
}

func (w *simWorld) serverOutcome(c Conditions, tk *simTask, booking bool) outcome {
	var o outcome
	o.poolWait = w.r.between(50*time.Microsecond, 400*time.Microsecond)
	o.connectDur = w.r.lognormal(4*time.Millisecond, 0.3)
	o.newConn = w.r.Float64() < 0.05
	if booking {
		o.queryDur = w.r.lognormal(35*time.Millisecond, 0.4)
	} else {
		o.queryDur = w.r.lognormal(9*time.Millisecond, 0.4)
	}
	if c.Bad != nil && tk.version == c.Bad.Version && booking && w.r.Float64() < c.Bad.ErrorRate {
		o.err, o.badDeploy = c.Bad.Message, true
		return o
	}
	if c.Crash {
		o.newConn, o.connErr, o.err = true, true, errRecovery
		o.connectDur = w.r.lognormal(3*time.Millisecond, 0.3)
		return o
	}
	excess := (w.demand - appSlots) / math.Max(w.demand, 1)
	switch {
	case excess > 0:
		pErr := math.Min(0.2, 0.05+excess*0.5)
		pTimeout := math.Min(0.1, 0.03+excess*0.2)
		u := w.r.Float64()
		switch {
		case u < pErr*0.65:
			o.newConn, o.connErr, o.err = true, true, errReserved
		case u < pErr:
			o.newConn, o.connErr, o.err = true, true, errTooMany
		case u < pErr+pTimeout:
			o.newConn, o.err = false, errTimeout
			o.poolWait = w.cfg.AcquireTimeout
			return o
		}
		if o.connErr {
			o.poolWait = w.r.between(time.Millisecond, 5*time.Millisecond)
			return o
		}
		o.poolWait = w.r.lognormal(1200*time.Millisecond, 0.5)
		if booking {
			o.queryDur = w.r.lognormal(2700*time.Millisecond, 0.35) // waiting on the hot row's lock
		} else {
			o.queryDur = w.r.lognormal(500*time.Millisecond, 0.5)
		}
	case w.pressure > 1:
		o.poolWait = w.r.lognormal(time.Duration(float64(300*time.Millisecond)*(w.pressure-0.9)*3), 0.5)
		if booking {
			o.queryDur = w.r.lognormal(time.Duration(float64(time.Second)*(w.pressure-0.8)), 0.4)
		}
	default:
		if w.r.Float64() < 0.0005 {
			o.err = `duplicate key value violates unique constraint "bookings_pkey"`
		}
	}
	if o.poolWait > w.cfg.AcquireTimeout {
		o.poolWait, o.err, o.newConn = w.cfg.AcquireTimeout, errTimeout, false
	}
	return o
}

// request plays one front-door request at t: tickets-api -> tickets-server
// -> tickets-database, and, for a booking, the order through the queue.
func (w *simWorld) request(ctx context.Context, t time.Time, c Conditions, i int) {
	booking := w.r.Float64() < c.BookingShare
	api := w.fns["tickets-api"]
	inst, cold, ok := api.acquire(t)
	if !ok {
		return // API Gateway answers 429; nothing runs, CloudWatch counts a throttle
	}
	tk := w.tasks[(i+w.r.IntN(len(w.tasks)))%len(w.tasks)]
	o := w.serverOutcome(c, tk, booking)
	method, path := "GET", "/events"
	if booking {
		method, path = "POST", "/book"
	}

	init := time.Duration(0)
	if cold {
		init = w.r.lognormal(350*time.Millisecond, 0.3)
	}
	cs := t.Add(init + w.r.between(2*time.Millisecond, 6*time.Millisecond))
	ss := cs.Add(w.r.between(500*time.Microsecond, 2*time.Millisecond))
	se := w.serverSpans(ctx, tk, ss, method, o, booking)
	ce := se.Add(w.r.between(300*time.Microsecond, time.Millisecond))
	status := 200
	if booking {
		status = 201
	}
	if o.err != "" {
		status = 500
	}

	actx, apiSpan := inst.tracer.Start(ctx, api.name, trace.WithTimestamp(t), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(lambdaAttrs(api, inst, cold, w.r)...),
		trace.WithAttributes(attribute.String("http.request.method", method), attribute.String("url.path", path), attribute.String("http.route", "/{endpoint}")))
	cctx, client := inst.tracer.Start(actx, method, trace.WithTimestamp(cs), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(httpClientAttrs(method, albHost+path, status)...))
	// The server side is a child of the client span: stitch it with the
	// client's context, as propagation over HTTP would.
	w.serverTrace(cctx, tk, ss, se, method, o, booking, status)
	end := ce.Add(w.r.between(time.Millisecond, 4*time.Millisecond))
	if status >= 500 {
		client.SetStatus(codes.Error, fmt.Sprintf("HTTP %d", status))
	}
	client.End(trace.WithTimestamp(ce))
	failed := status >= 500
	if booking && !failed {
		pubStart := ce.Add(200 * time.Microsecond)
		pubEnd := pubStart.Add(w.r.lognormal(6*time.Millisecond, 0.3))
		_, pub := inst.tracer.Start(actx, "publish tickets-orders", trace.WithTimestamp(pubStart), trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(messagingAttrs("publish")...))
		pub.End(trace.WithTimestamp(pubEnd))
		end = pubEnd.Add(time.Millisecond)
		w.order(ctx, pub.SpanContext(), pubEnd.Add(w.r.lognormal(120*time.Millisecond, 0.5)))
	}
	apiSpan.SetAttributes(attribute.Int("http.response.status_code", map[bool]int{true: 502, false: status}[failed]))
	if failed {
		apiSpan.SetStatus(codes.Error, "502 Bad Gateway")
	}
	apiSpan.End(trace.WithTimestamp(end))
	api.release(inst, t, end, failed)
	w.srv.requests++
	if o.err != "" {
		w.srv.errors++
	}
	if booking {
		w.srv.writes++
	} else {
		w.srv.reads++
	}
}

func (w *simWorld) serverSpans(_ context.Context, _ *simTask, ss time.Time, _ string, o outcome, _ bool) time.Time {
	d := 300*time.Microsecond + o.poolWait
	if o.newConn {
		d += o.connectDur
	}
	if o.err == "" || (!o.connErr && o.err != errTimeout && !o.badDeploy) {
		d += o.queryDur + 3*time.Millisecond
	}
	return ss.Add(d + 200*time.Microsecond)
}

// serverTrace emits tickets-server's spans for one request.
func (w *simWorld) serverTrace(ctx context.Context, tk *simTask, ss, se time.Time, method string, o outcome, booking bool, status int) {
	tr := tk.tracer
	sctx, srv := tr.Start(ctx, method+" /:endpoint", trace.WithTimestamp(ss), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(httpServerAttrs(method, status)...))
	hs := ss.Add(100 * time.Microsecond)
	hctx, handler := tr.Start(sctx, "request handler", trace.WithTimestamp(hs))
	fail := func(s trace.Span, at time.Time) {
		s.SetStatus(codes.Error, o.err)
		s.AddEvent("exception", trace.WithTimestamp(at), trace.WithAttributes(
			attribute.String("exception.type", "Error"), attribute.String("exception.message", o.err)))
	}
	if o.badDeploy {
		fail(handler, se)
	} else {
		ps := hs.Add(50 * time.Microsecond)
		pe := ps.Add(o.poolWait)
		pctx, pool := tr.Start(hctx, "pg-pool.connect", trace.WithTimestamp(ps), trace.WithAttributes(dbAttrs(w.st, "")...))
		if o.newConn {
			cs := pe
			ce := cs.Add(o.connectDur)
			_, conn := tr.Start(pctx, "pg.connect", trace.WithTimestamp(cs), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(dbAttrs(w.st, "")...))
			if o.connErr {
				fail(conn, ce)
			}
			conn.End(trace.WithTimestamp(ce))
			pe = ce
		}
		if o.err == errTimeout || o.connErr {
			fail(pool, pe)
		}
		pool.End(trace.WithTimestamp(pe))
		if !o.connErr && o.err != errTimeout {
			qs := pe.Add(100 * time.Microsecond)
			if booking {
				q1 := o.queryDur * 7 / 10
				w.query(hctx, tr, "SELECT", "SELECT seats_left FROM events WHERE id = $1 FOR UPDATE", qs, qs.Add(q1), "")
				w.query(hctx, tr, "INSERT", "INSERT INTO bookings (event_id, user_id) VALUES ($1, $2)", qs.Add(q1+100*time.Microsecond), qs.Add(o.queryDur), o.err)
			} else {
				w.query(hctx, tr, "SELECT", "SELECT id, name, seats_left FROM events ORDER BY id LIMIT 20", qs, qs.Add(o.queryDur), o.err)
			}
		}
		if o.err != "" {
			fail(handler, se)
		}
	}
	handler.End(trace.WithTimestamp(se.Add(-100 * time.Microsecond)))
	if o.err != "" {
		srv.SetStatus(codes.Error, o.err)
	}
	srv.End(trace.WithTimestamp(se))
	if o.connErr {
		w.pgLog(ss, fmt.Sprintf("%s(%d)", tk.ip, 30000+w.r.IntN(30000)), "tickets", dbName, 20000+w.r.IntN(9000), "FATAL", o.err)
	}
}

func (w *simWorld) query(ctx context.Context, tr trace.Tracer, op, stmt string, s, e time.Time, err string) {
	_, q := tr.Start(ctx, "pg.query:"+op, trace.WithTimestamp(s), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(dbAttrs(w.st, op)...), trace.WithAttributes(attribute.String("db.query.text", stmt), attribute.String("db.statement", stmt)))
	if err != "" {
		q.SetStatus(codes.Error, err)
	}
	q.End(trace.WithTimestamp(e))
}

// order plays the queue consumer: tickets-orders -> tickets-payments and
// tickets-notify.
func (w *simWorld) order(ctx context.Context, producer trace.SpanContext, t time.Time) {
	orders := w.fns["tickets-orders"]
	inst, cold, ok := orders.acquire(t)
	if !ok {
		return // SQS keeps the message; it is retried later
	}
	if cold {
		t = t.Add(w.r.lognormal(300*time.Millisecond, 0.3))
	}
	pctx := trace.ContextWithRemoteSpanContext(ctx, producer)
	octx, span := inst.tracer.Start(pctx, "process tickets-orders", trace.WithTimestamp(t), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(trace.Link{SpanContext: producer, Attributes: []attribute.KeyValue{attribute.String("messaging.operation.type", "publish")}}),
		trace.WithAttributes(lambdaAttrs(orders, inst, cold, w.r)...), trace.WithAttributes(messagingAttrs("process")...))
	cur := t.Add(w.r.between(2*time.Millisecond, 5*time.Millisecond))
	failed := false
	for _, callee := range []string{"tickets-payments", "tickets-notify"} {
		end, err := w.invoke(octx, inst, w.fns[callee], cur)
		cur = end.Add(w.r.between(time.Millisecond, 3*time.Millisecond))
		if err != "" {
			failed = true
			span.SetStatus(codes.Error, err)
			break
		}
	}
	span.End(trace.WithTimestamp(cur))
	orders.release(inst, t, cur, failed)
}

var calleeErrors = map[string]struct {
	p   float64
	msg string
}{
	"tickets-payments": {0.01, "PaymentDeclined: card_declined"},
	"tickets-notify":   {0.005, "MessageRejected: Email address is not verified."},
}

// invoke plays a synchronous Lambda-to-Lambda call.
func (w *simWorld) invoke(ctx context.Context, from *lambdaInstance, fn *lambdaFn, t time.Time) (time.Time, string) {
	cctx, client := from.tracer.Start(ctx, "Lambda.Invoke", trace.WithTimestamp(t), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(invokeAttrs(fn.name)...))
	inst, cold, ok := fn.acquire(t)
	if !ok {
		end := t.Add(w.r.lognormal(8*time.Millisecond, 0.3))
		client.SetStatus(codes.Error, "TooManyRequestsException: Rate Exceeded.")
		client.SetAttributes(attribute.Int("http.response.status_code", 429))
		client.End(trace.WithTimestamp(end))
		return end, "TooManyRequestsException: Rate Exceeded."
	}
	ss := t.Add(w.r.between(2*time.Millisecond, 8*time.Millisecond))
	if cold {
		ss = ss.Add(w.r.lognormal(250*time.Millisecond, 0.3))
	}
	median := 110 * time.Millisecond
	if fn.name == "tickets-notify" {
		median = 45 * time.Millisecond
	}
	se := ss.Add(w.r.lognormal(median, 0.4))
	_, srv := inst.tracer.Start(cctx, fn.name, trace.WithTimestamp(ss), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(lambdaAttrs(fn, inst, cold, w.r)...))
	errMsg := ""
	if e := calleeErrors[fn.name]; w.r.Float64() < e.p {
		errMsg = e.msg
		srv.SetStatus(codes.Error, errMsg)
		client.SetStatus(codes.Error, errMsg)
	}
	srv.End(trace.WithTimestamp(se))
	fn.release(inst, ss, se, errMsg != "")
	end := se.Add(w.r.between(time.Millisecond, 3*time.Millisecond))
	client.End(trace.WithTimestamp(end))
	return end, errMsg
}

// metrics sends the CloudWatch-style series of the period ending at t.
func (w *simWorld) metrics(ctx context.Context, t time.Time) {
	cpu := w.cpu()
	dbCPU := clamp(6+28*w.pressure+w.r.Norm(), 2, 99)
	if !w.crashed.IsZero() {
		dbCPU = 99
	}
	gs := rdsGauges(w.st, math.Round(w.conns), dbCPU, w.pressure)
	gs = append(gs, ecsGauges(cpu, clamp(35+10*w.pressure, 0, 95), float64(len(w.tasks)))...)
	for _, name := range fnOrder {
		gs = append(gs, lambdaGauges(name, w.fns[name].takeStats(t))...)
	}
	w.srv = srvStats{}
	if err := w.h.exportGauges(ctx, cloudwatchResource(), t, gs); err != nil && ctx.Err() == nil {
		w.cfg.Logger.Warn("demo: export metrics", "err", err)
	}
}

func rdsGauges(st *state, conns, cpu, pressure float64) []gauge {
	dim := []attribute.KeyValue{attribute.String("dimension_DBInstanceIdentifier", st.dbInstance())}
	return []gauge{
		{"aws_rds_database_connections_sum", conns, dim},
		{"aws_rds_cpuutilization_average", cpu, dim},
		{"aws_rds_freeable_memory_average", math.Max(40e6, 900e6-conns*14e6), dim},
		{"aws_rds_read_latency_average", 0.0006 + 0.002*pressure, dim},
		{"aws_rds_write_latency_average", 0.0012 + 0.006*pressure, dim},
	}
}

func ecsGauges(cpu, mem, tasks float64) []gauge {
	dim := []attribute.KeyValue{attribute.String("dimension_ServiceName", serverName), attribute.String("dimension_ClusterName", clusterName)}
	return []gauge{
		{"aws_ecs_cpuutilization_average", cpu, dim},
		{"aws_ecs_memory_utilization_average", mem, dim},
		{"aws_ecs_running_task_count_average", tasks, dim},
	}
}

func lambdaGauges(name string, s fnStats) []gauge {
	dim := []attribute.KeyValue{attribute.String("dimension_FunctionName", name)}
	avg := 0.0
	if s.durN > 0 {
		avg = s.durSumMS / s.durN
	}
	return []gauge{
		{"aws_lambda_invocations_sum", s.invocations, dim},
		{"aws_lambda_errors_sum", s.errors, dim},
		{"aws_lambda_throttles_sum", s.throttles, dim},
		{"aws_lambda_duration_average", avg, dim},
		{"aws_lambda_concurrent_executions_maximum", float64(s.maxConc), dim},
	}
}

// Span attributes.

const albHost = "internal-tickets-server-alb-1184019475.us-east-1.elb.amazonaws.com"

func dbAttrs(st *state, op string) []attribute.KeyValue {
	st.dbOnce.Do(func() { st.dbAttrs = makeDBAttrs(st) })
	if op == "" {
		return st.dbAttrs
	}
	a := make([]attribute.KeyValue, 0, len(st.dbAttrs)+2)
	a = append(a, st.dbAttrs...)
	return append(a, attribute.String("db.operation.name", op), attribute.String("db.operation", op))
}

func makeDBAttrs(st *state) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("db.system.name", "postgresql"),
		attribute.String("db.system", "postgresql"),
		attribute.String("db.namespace", dbName),
		attribute.String("db.name", dbName),
		attribute.String("db.user", "tickets"),
		attribute.String("server.address", st.dbHost()),
		attribute.String("net.peer.name", st.dbHost()),
		attribute.Int("server.port", 5432),
		attribute.Int("net.peer.port", 5432),
		attribute.String("peer.service", "tickets-database"),
		attribute.String("db.connection_string", fmt.Sprintf("postgresql://%s:5432/%s", st.dbHost(), dbName)),
	}
}

func httpServerAttrs(method string, status int) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("http.request.method", method),
		attribute.String("http.route", "/:endpoint"),
		attribute.String("url.scheme", "http"),
		attribute.Int("http.response.status_code", status),
		attribute.String("network.protocol.version", "1.1"),
	}
}

func httpClientAttrs(method, hostPath string, status int) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("http.request.method", method),
		attribute.String("server.address", albHost),
		attribute.Int("server.port", 80),
		attribute.String("url.full", "http://"+hostPath),
		attribute.String("peer.service", serverName),
		attribute.Int("http.response.status_code", status),
	}
}

func lambdaAttrs(fn *lambdaFn, inst *lambdaInstance, cold bool, r *rnd) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("faas.trigger", fn.trigger),
		attribute.Bool("faas.coldstart", cold),
		attribute.String("faas.invocation_id", fmt.Sprintf("%s-%s-%s-%s-%s", r.Hex(4), r.Hex(2), r.Hex(2), r.Hex(2), r.Hex(6))),
		attribute.String("cloud.resource_id", fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, account, fn.name)),
	}
}

func messagingAttrs(op string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.system", "aws_sqs"),
		attribute.String("messaging.destination.name", "tickets-orders"),
		attribute.String("messaging.operation.type", op),
		attribute.String("messaging.operation", op),
		attribute.String("server.address", "sqs.us-east-1.amazonaws.com"),
	}
}

func invokeAttrs(name string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("rpc.system", "aws-api"),
		attribute.String("rpc.service", "Lambda"),
		attribute.String("rpc.method", "Invoke"),
		attribute.String("faas.invoked_name", name),
		attribute.String("faas.invoked_provider", "aws"),
		attribute.String("faas.invoked_region", region),
		attribute.String("peer.service", name),
	}
}

// backfill sends cfg.Backfill of history ending at end: normal traffic,
// then the incident's first ~20 minutes.
func backfill(ctx context.Context, h *hub, st *state, sc Scenario, cfg Config, end time.Time) error {
	h.ids.reseed(cfg.Seed)
	h.blocking.Store(true)
	defer h.blocking.Store(false)
	from := end.Add(-cfg.Backfill)
	w := newSimWorld(h, st, sc, cfg, cfg.Seed, backfillRate, from)
	w.incident = end.Add(-min(20*time.Minute, cfg.Backfill/2))
	for t := from; t.Before(end); t = t.Add(time.Second) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.step(ctx, t, time.Second)
		if t.Sub(from)%(5*time.Minute) == 0 {
			// Pace ourselves: one batch of history at a time.
			w.close(ctx)
		}
	}
	w.close(ctx)
	return nil
}

// runSim runs the simulated world live: its clock starts now and runs
// cfg.Speed times faster than the wall clock (so with Speed > 1 timestamps
// run ahead of it).
func runSim(ctx context.Context, h *hub, st *state, sc Scenario, cfg Config, start time.Time) error {
	h.blocking.Store(true)
	rate := cfg.Rate / spansPerRequest / cfg.Speed
	w := newSimWorld(h, st, sc, cfg, cfg.Seed+1, rate, start)
	w.incident = start.Add(cfg.IncidentAfter)
	fmt.Fprintf(cfg.Out, "sim: %s, speed %gx, %g spans/s\n", st.dbInstance(), cfg.Speed, cfg.Rate)
	fmt.Fprintf(cfg.Out, "tickets-server: %d tasks (simulated)\n", len(w.tasks))
	fmt.Fprintf(cfg.Out, "lambda: %v (simulated)\n", fnOrder)
	if cfg.Ready != nil {
		cfg.Ready()
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	simT := start
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			target := start.Add(time.Duration(float64(now.Sub(start)) * cfg.Speed))
			for simT.Before(target) && ctx.Err() == nil {
				w.step(ctx, simT, time.Second)
				simT = simT.Add(time.Second)
			}
		}
	}
}
