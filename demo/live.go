package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

const (
	liveBaseRate = 2.0 // front-door requests per second at normal load
	maxTasks     = 6
	maxInFlight  = 1000
	// lockHold is how long a booking holds the event's row lock (the seat
	// map check); it caps bookings of one event at ~10/s, which the sale's
	// surge exceeds: bookings queue on the lock holding their connections
	// (~36 x 0.1 s: the ~4 s requests), pools fill, new tasks' pools find
	// the database full, and requests to full pools wait until they give up.
	lockHold = 0.1
)

// liveWorld runs tickets-server for real (HTTP servers and pgx pools on a
// real PostgreSQL); the Lambdas around it run in-process.
type liveWorld struct {
	cfg      Config
	h        *hub
	st       *state
	sc       Scenario
	r        *rnd
	incident time.Time
	pg       *pgServer
	lam      *simWorld // the queue's consumers, played with explicit timestamps
	fns      map[string]*lambdaFn
	client   *http.Client
	prop     propagation.TextMapPropagator

	mu        sync.Mutex
	tasks     []*liveTask
	rr        int
	version   map[string]string
	nextAZ    int
	lastScale time.Time
	ecsCPU    float64
	latSum    float64
	latN      float64

	inflight atomic.Int64
	reqWG    sync.WaitGroup
	stopping sync.WaitGroup // tasks being drained
}

func runLive(ctx context.Context, h *hub, st *state, sc Scenario, cfg Config, start time.Time) error {
	w := &liveWorld{
		cfg: cfg, h: h, st: st, sc: sc, r: newRnd(start.UnixNano(), 0x11fe),
		incident: start.Add(cfg.IncidentAfter), version: map[string]string{}, lastScale: start,
		prop: propagation.TraceContext{},
	}
	w.h.ids.reseed(start.UnixNano())
	w.fns = newLambdaFns(h, w.r, 5)
	w.lam = &simWorld{h: h, st: st, r: w.r, fns: w.fns, cfg: cfg}
	w.client = &http.Client{
		Timeout:   cfg.AcquireTimeout + 10*time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
	}
	defer w.client.CloseIdleConnections()

	pg, err := startPostgres(ctx, cfg.DataDir, cfg.pgBinDir)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	w.pg = pg
	defer pg.stop()
	fmt.Fprintf(cfg.Out, "postgres: %s (PostgreSQL 15, max_connections %d) on 127.0.0.1 port %d\n", st.dbInstance(), maxConns, pg.port)

	var bg sync.WaitGroup
	tailCtx, stopTail := context.WithCancel(context.Background())
	tl := newTailer(pg.logPath, h.loggerProvider(rdsResource(st)).Logger(instrumentationScope.Name))
	bg.Go(func() { tl.run(tailCtx) })
	defer func() { pg.stop(); stopTail(); bg.Wait() }()
	fmt.Fprintf(cfg.Out, "rds logs: %s\n", st.logGroup())

	for _, az := range zones {
		w.version[az] = serverVer
		if _, err := w.startTask(az); err != nil {
			w.stopTasks()
			return err
		}
	}
	defer w.stopTasks()
	fmt.Fprintf(cfg.Out, "tickets-server: %d tasks (ECS Fargate, %s)\n", len(w.tasks), strings.Join(zones, ", "))
	fmt.Fprintf(cfg.Out, "lambda: %s\n", strings.Join(fnOrder, ", "))

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	// Requests outlive the load generator by a moment at shutdown, so that
	// they finish rather than all end as cancelled.
	reqCtx, stopReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReqs()
	var loops sync.WaitGroup
	loops.Go(func() { w.monitor(runCtx) })
	loops.Go(func() { w.control(runCtx) })
	fmt.Fprintf(cfg.Out, "cloudwatch: aws_rds_*, aws_lambda_*, aws_ecs_* every %s\n", cfg.MetricInterval)
	loops.Go(func() { w.load(runCtx, reqCtx) })
	fmt.Fprintf(cfg.Out, "load: %s begins at %s (in %s)\n", sc.Name(), w.incident.Format("15:04:05"), cfg.IncidentAfter)
	if cfg.Ready != nil {
		cfg.Ready()
	}

	<-ctx.Done()
	stop()
	loops.Wait()
	drained := make(chan struct{})
	go func() { w.reqWG.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
		stopReqs()
		<-drained
	}
	return nil
}

// liveTask is one ECS task of tickets-server.
type liveTask struct {
	w               *liveWorld
	id, az, version string
	tp              *sdktrace.TracerProvider
	tracer          trace.Tracer
	pool            *pgxpool.Pool
	srv             *http.Server
	url             string
	base            context.Context // cancelled when the task stops
	cancel          context.CancelFunc
	served          chan struct{}
	inflight        atomic.Int64
}

func (w *liveWorld) startTask(az string) (*liveTask, error) {
	w.mu.Lock()
	ver := w.version[az]
	w.mu.Unlock()
	t := &liveTask{w: w, id: w.r.Hex(16), az: az, version: ver, served: make(chan struct{})}
	t.tp = w.h.tracerProvider(ecsResource(t.id, az, ver))
	t.tracer = t.tp.Tracer(instrumentationScope.Name, trace.WithInstrumentationVersion(instrumentationScope.Version))

	pc, err := pgxpool.ParseConfig(w.pg.connString("tickets", dbName, "tickets-server-"+t.id[:8]))
	if err != nil {
		return nil, err
	}
	pc.MaxConns = poolMax
	pc.MinConns = 0
	pc.MaxConnIdleTime = time.Minute
	pc.ConnConfig.Tracer = connTracer{tr: t.tracer, st: w.st}
	base, cancel := context.WithCancel(context.Background())
	t.base, t.cancel = base, cancel
	if t.pool, err = pgxpool.NewWithConfig(base, pc); err != nil {
		cancel()
		return nil, fmt.Errorf("demo: pool: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.pool.Close()
		return nil, err
	}
	t.url = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /{endpoint}", t.serve)
	mux.HandleFunc("GET /{endpoint}", t.serve)
	t.srv = &http.Server{Handler: mux, BaseContext: func(net.Listener) context.Context { return base }, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = t.srv.Serve(ln); close(t.served) }()
	w.mu.Lock()
	w.tasks = append(w.tasks, t)
	w.mu.Unlock()
	w.cfg.Logger.Info("demo: tickets-server task started", "task", t.id, "az", az, "version", ver, "url", t.url)
	return t, nil
}

// stop drains the task: in-flight requests are cancelled, the pool closed.
func (t *liveTask) stop() {
	t.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.srv.Shutdown(ctx)
	<-t.served
	t.pool.Close()
	t.w.h.retire(t.tp)
}

func (w *liveWorld) stopTasks() {
	w.mu.Lock()
	tasks := w.tasks
	w.tasks = nil
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range tasks {
		wg.Go(t.stop)
	}
	wg.Wait()
	w.stopping.Wait()
}

func (t *liveTask) serve(rw http.ResponseWriter, r *http.Request) {
	t.inflight.Add(1)
	defer t.inflight.Add(-1)
	start := time.Now()
	booking := r.Method == http.MethodPost
	ctx := t.w.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, srv := t.tracer.Start(ctx, r.Method+" /:endpoint", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", "/:endpoint"),
			attribute.String("url.path", r.URL.Path), attribute.String("url.scheme", "http"), attribute.String("network.protocol.version", "1.1")))
	hctx, h := t.tracer.Start(ctx, "request handler")
	event, _ := strconv.Atoi(r.URL.Query().Get("event"))
	msg := t.work(hctx, booking, max(event, 1))
	status := http.StatusOK
	if booking {
		status = http.StatusCreated
	}
	if msg != "" {
		status = http.StatusInternalServerError
		h.SetStatus(codes.Error, msg)
		srv.SetStatus(codes.Error, msg)
	}
	if t.base.Err() != nil {
		return // the task is being killed: its spans die with it, unsent
	}
	h.End()
	srv.SetAttributes(attribute.Int("http.response.status_code", status))
	srv.End()
	rw.WriteHeader(status)
	if msg != "" {
		_, _ = io.WriteString(rw, msg)
	}
	t.w.mu.Lock()
	t.w.latSum += time.Since(start).Seconds()
	t.w.latN++
	t.w.mu.Unlock()
}

// work is the handler's body; it returns the error text for the span status.
func (t *liveTask) work(ctx context.Context, booking bool, event int) string {
	c := t.w.sc.At(time.Since(t.w.incident))
	if b := c.Bad; b != nil && booking && t.version == b.Version && t.w.r.Float64() < b.ErrorRate {
		return b.Message
	}
	pctx, ps := t.tracer.Start(ctx, "pg-pool.connect", trace.WithAttributes(dbAttrs(t.w.st, "")...))
	actx, cancel := context.WithTimeout(pctx, t.w.cfg.AcquireTimeout)
	conn, err := t.pool.Acquire(actx)
	cancel()
	if err != nil {
		msg := pgErrorText(err)
		ps.SetStatus(codes.Error, msg)
		ps.End()
		return msg
	}
	ps.End()
	defer conn.Release()
	if !booking {
		return t.query(ctx, "SELECT", "SELECT id, name, seats_left FROM events ORDER BY id LIMIT 20", func(ctx context.Context, sql string) error {
			rows, err := conn.Query(ctx, sql)
			if err != nil {
				return err
			}
			rows.Close()
			return rows.Err()
		})
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return pgErrorText(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if msg := t.query(ctx, "SELECT", "SELECT seats_left, pg_sleep($2) FROM events WHERE id = $1 FOR UPDATE", func(ctx context.Context, sql string) error {
		var seats int64
		var slept any
		return tx.QueryRow(ctx, sql, event, lockHold).Scan(&seats, &slept)
	}); msg != "" {
		return msg
	}
	if msg := t.query(ctx, "INSERT", "WITH b AS (INSERT INTO bookings (event_id, user_id) VALUES ($1, $2) RETURNING event_id) UPDATE events SET seats_left = seats_left - 1 FROM b WHERE events.id = b.event_id", func(ctx context.Context, sql string) error {
		_, err := tx.Exec(ctx, sql, event, 1+t.w.r.IntN(1000000))
		return err
	}); msg != "" {
		return msg
	}
	if err := tx.Commit(ctx); err != nil {
		return pgErrorText(err)
	}
	return ""
}

func (t *liveTask) query(ctx context.Context, op, sql string, run func(context.Context, string) error) string {
	qctx, q := t.tracer.Start(ctx, "pg.query:"+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(dbAttrs(t.w.st, op)...),
		trace.WithAttributes(attribute.String("db.query.text", sql), attribute.String("db.statement", sql)))
	defer q.End()
	if err := run(qctx, sql); err != nil {
		msg := pgErrorText(err)
		q.SetStatus(codes.Error, msg)
		return msg
	}
	return ""
}

// pgErrorText maps what the driver or the pool returns to the messages the
// workshop shows: PostgreSQL's own text in RDS wording, and node-postgres'
// wording for a pool that gave up waiting.
func pgErrorText(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return errTimeout
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return rdsWording(pe.Message)
	}
	s := err.Error()
	for _, m := range []string{errTooMany, errRecovery, errCrashed} {
		if strings.Contains(s, m) {
			return m
		}
	}
	if strings.Contains(s, "remaining connection slots are reserved") {
		return errReserved
	}
	return s
}

// connTracer makes the pg.connect span under pg-pool.connect: pgxpool hands
// the acquiring context's values to the connection it opens.
type connTracer struct {
	tr trace.Tracer
	st *state
}

func (connTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (connTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c connTracer) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	ctx, _ = c.tr.Start(ctx, "pg.connect", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(dbAttrs(c.st, "")...))
	return ctx
}

func (connTracer) TraceConnectEnd(ctx context.Context, d pgx.TraceConnectEndData) {
	s := trace.SpanFromContext(ctx)
	if d.Err != nil {
		msg := pgErrorText(d.Err)
		s.SetStatus(codes.Error, msg)
		s.AddEvent("exception", trace.WithAttributes(attribute.String("exception.type", "DatabaseError"), attribute.String("exception.message", msg)))
	}
	s.End()
}

// load is the traffic generator: Poisson arrivals shaped by the time of day
// and the scenario.
func (w *liveWorld) load(ctx, reqCtx context.Context) {
	for {
		c := w.sc.At(time.Since(w.incident))
		rate := liveBaseRate * offered(time.Now(), c)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(w.r.Exp() / rate * float64(time.Second))):
		}
		if w.inflight.Load() >= maxInFlight {
			continue
		}
		w.inflight.Add(1)
		w.reqWG.Add(1)
		go func() {
			defer w.reqWG.Done()
			defer w.inflight.Add(-1)
			w.front(reqCtx, c)
		}()
	}
}

// front is one invocation of tickets-api, the front door.
func (w *liveWorld) front(ctx context.Context, c Conditions) {
	booking := w.r.Float64() < c.BookingShare
	api := w.fns["tickets-api"]
	start := time.Now()
	inst, cold, ok := api.acquire(start)
	if !ok {
		return
	}
	failed := true
	defer func() { api.release(inst, start, time.Now(), failed) }()
	if cold {
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.r.lognormal(300*time.Millisecond, 0.3)):
		}
	}
	method, path := http.MethodGet, "/events"
	if booking {
		event := 2 + w.r.IntN(19)
		if w.r.Float64() < c.HotShare {
			event = 1
		}
		method, path = http.MethodPost, "/book?event="+strconv.Itoa(event)
	}
	actx, span := inst.tracer.Start(ctx, api.name, trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(lambdaAttrs(api, inst, cold, w.r)...),
		trace.WithAttributes(attribute.String("http.request.method", method), attribute.String("url.path", strings.SplitN(path, "?", 2)[0]), attribute.String("http.route", "/{endpoint}")))
	defer func() {
		if ctx.Err() == nil { // shutting down: spans of killed invocations are never sent
			span.End()
		}
	}()
	task := w.pick()
	if task == nil {
		return
	}
	cctx, client := inst.tracer.Start(actx, method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", method), attribute.String("server.address", albHost), attribute.Int("server.port", 80),
			attribute.String("url.full", task.url+path), attribute.String("peer.service", serverName)))
	status, err := w.call(cctx, method, task.url+path)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		msg := "Endpoint request failed"
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			msg = "Endpoint request timed out" // API Gateway's words
		}
		client.SetStatus(codes.Error, msg)
	} else {
		client.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			client.SetStatus(codes.Error, fmt.Sprintf("HTTP %d", status))
		}
	}
	client.End()
	failed = err != nil || status >= 500
	if failed {
		span.SetAttributes(attribute.Int("http.response.status_code", 502))
		span.SetStatus(codes.Error, "502 Bad Gateway")
		return
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if booking {
		_, pub := inst.tracer.Start(actx, "publish tickets-orders", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(messagingAttrs("publish")...))
		time.Sleep(w.r.lognormal(5*time.Millisecond, 0.3))
		pub.End()
		// The queue's consumers run on their own clock, a little ahead.
		w.lam.order(context.WithoutCancel(ctx), pub.SpanContext(), time.Now().Add(w.r.lognormal(120*time.Millisecond, 0.5)))
	}
}

func (w *liveWorld) call(ctx context.Context, method, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, err
	}
	w.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// pick is the load balancer: round robin over the running tasks.
func (w *liveWorld) pick() *liveTask {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.tasks) == 0 {
		return nil
	}
	w.rr++
	return w.tasks[w.rr%len(w.tasks)]
}

// control runs once a second: deployments, the crash episode and, every
// ScaleInterval, the ECS autoscaler.
func (w *liveWorld) control(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	crashed := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c := w.sc.At(time.Since(w.incident))
		w.deploy(c)
		if c.Crash && !crashed {
			crashed = w.crash(ctx)
		}
		if !c.Crash {
			crashed = false
		}
		w.mu.Lock()
		due := time.Since(w.lastScale) >= w.cfg.ScaleInterval
		w.mu.Unlock()
		if due {
			w.autoscale(ctx)
		}
	}
}

func (w *liveWorld) deploy(c Conditions) {
	for _, az := range zones {
		want := serverVer
		if c.Bad != nil && c.Bad.AZ == az {
			want = c.Bad.Version
		}
		w.mu.Lock()
		same := w.version[az] == want
		w.version[az] = want
		var old []*liveTask
		if !same {
			var keep []*liveTask
			for _, t := range w.tasks {
				if t.az == az {
					old = append(old, t)
				} else {
					keep = append(keep, t)
				}
			}
			w.tasks = keep
		}
		w.mu.Unlock()
		for range old {
			if _, err := w.startTask(az); err != nil {
				w.cfg.Logger.Warn("demo: deploy", "err", err)
			}
		}
		for _, t := range old {
			w.stopping.Go(t.stop)
		}
	}
}

// autoscale is ECS target tracking on CPU; a task's CPU is modelled from
// its in-flight requests and their latency.
func (w *liveWorld) autoscale(ctx context.Context) {
	w.mu.Lock()
	n := len(w.tasks)
	inflight := int64(0)
	for _, t := range w.tasks {
		inflight += t.inflight.Load()
	}
	lat := 0.0
	if w.latN > 0 {
		lat = w.latSum / w.latN
	}
	w.latSum, w.latN = 0, 0
	cpu := clamp(12+5*float64(inflight)/float64(max(n, 1))+15*lat, 0, 99)
	w.ecsCPU = cpu
	w.lastScale = time.Now()
	az := zones[w.nextAZ%len(zones)]
	w.mu.Unlock()
	switch {
	case cpu > 70 && n < maxTasks:
		w.mu.Lock()
		w.nextAZ++
		w.mu.Unlock()
		if _, err := w.startTask(az); err != nil {
			w.cfg.Logger.Warn("demo: scale out", "err", err)
			return
		}
		w.cfg.Logger.Info("demo: tickets-server scaled out", "tasks", n+1, "cpu", cpu)
	case cpu < 30 && n > len(zones) && time.Since(w.incident) > 0:
		w.mu.Lock()
		t := w.tasks[len(w.tasks)-1]
		w.tasks = w.tasks[:len(w.tasks)-1]
		w.mu.Unlock()
		w.stopping.Go(t.stop)
	}
	_ = ctx
}

// crash kills one of the application's backends with SIGKILL: the
// postmaster then resets every connection and runs crash recovery. A second
// backend is frozen (SIGSTOP) for a few seconds first, as one stuck in I/O
// would be: the postmaster waits for it to exit, and meanwhile new
// connections hear "the database system is in recovery mode".
func (w *liveWorld) crash(ctx context.Context) bool {
	c, err := pgx.Connect(ctx, w.pg.connString("rdsadmin", "postgres", "rdsadmin"))
	if err != nil {
		return false
	}
	rows, err := c.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE usename = 'tickets' ORDER BY state = 'active' DESC, backend_start DESC LIMIT 2`)
	var pids []int
	if err == nil {
		for rows.Next() {
			var pid int
			if rows.Scan(&pid) == nil {
				pids = append(pids, pid)
			}
		}
		rows.Close()
	}
	c.Close(context.WithoutCancel(ctx))
	if len(pids) == 0 {
		return false
	}
	w.cfg.Logger.Info("demo: crashing a database backend", "pids", pids)
	if len(pids) > 1 {
		if syscall.Kill(pids[1], syscall.SIGSTOP) == nil {
			defer func() { _ = syscall.Kill(pids[1], syscall.SIGCONT) }()
		}
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		return false
	}
	if len(pids) > 1 {
		select {
		case <-ctx.Done():
		case <-time.After(4 * time.Second):
		}
	}
	return true
}

// monitor is CloudWatch: every MetricInterval it samples the database (as
// RDS's rdsadmin does, holding a few sessions of its own for half the
// period) and the Lambda and ECS counters, and sends the series.
func (w *liveWorld) monitor(ctx context.Context) {
	var admin *pgx.Conn
	var health []*pgx.Conn
	closeAll := func() {
		bctx := context.WithoutCancel(ctx)
		for _, c := range health {
			c.Close(bctx)
		}
		health = nil
		if admin != nil {
			admin.Close(bctx)
			admin = nil
		}
	}
	defer closeAll()
	var prev struct {
		cpu, blkRead, blkTime, walW, walT float64
		at                                time.Time
	}
	half := w.cfg.MetricInterval / 2
	tick := time.NewTicker(half)
	defer tick.Stop()
	phase := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		phase++
		if phase%2 == 0 {
			for _, c := range health {
				c.Close(ctx)
			}
			health = nil
			continue
		}
		now := time.Now()
		for range 3 {
			if c, err := pgx.Connect(ctx, w.pg.connString("rdsadmin", "postgres", "rdsadmin-healthcheck")); err == nil {
				health = append(health, c)
			}
		}
		if admin == nil || admin.IsClosed() {
			admin, _ = pgx.Connect(ctx, w.pg.connString("rdsadmin", "postgres", "rdsadmin"))
		}
		var conns, blkRead, blkTime, walW, walT float64
		ok := false
		if admin != nil {
			err := admin.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
				(SELECT coalesce(sum(blks_read), 0) FROM pg_stat_database), (SELECT coalesce(sum(blk_read_time), 0) FROM pg_stat_database),
				(SELECT wal_write FROM pg_stat_wal), (SELECT wal_write_time FROM pg_stat_wal)`).Scan(&conns, &blkRead, &blkTime, &walW, &walT)
			if err != nil {
				admin.Close(ctx)
				admin = nil
			} else {
				ok = true
			}
		}
		cpuTicks := procCPU(w.pg.pid())
		var gs []gauge
		if ok && !prev.at.IsZero() {
			secs := now.Sub(prev.at).Seconds()
			cpu := clamp((cpuTicks-prev.cpu)/(secs*100*float64(runtime.NumCPU()))*100, 0, 100)
			readLat, writeLat := 0.0, 0.0
			if d := blkRead - prev.blkRead; d > 0 {
				readLat = (blkTime - prev.blkTime) / d / 1000
			}
			if d := walW - prev.walW; d > 0 {
				writeLat = (walT - prev.walT) / d / 1000
			}
			gs = rdsGauges(w.st, conns, cpu, 0)
			gs[3].value, gs[4].value = readLat, writeLat
		}
		if ok {
			prev.cpu, prev.blkRead, prev.blkTime, prev.walW, prev.walT, prev.at = cpuTicks, blkRead, blkTime, walW, walT, now
		}
		w.mu.Lock()
		gs = append(gs, ecsGauges(max(w.ecsCPU, 12), clamp(30+float64(w.inflight.Load())/10, 0, 95), float64(len(w.tasks)))...)
		w.mu.Unlock()
		for _, name := range fnOrder {
			f := w.fns[name]
			f.reap(now, 10*time.Minute)
			gs = append(gs, lambdaGauges(name, f.takeStats(now))...)
		}
		if err := w.h.exportGauges(ctx, cloudwatchResource(), now, gs); err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("demo: export metrics", "err", err)
		}
	}
}
