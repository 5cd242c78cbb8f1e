// Package servicegraph derives the edges between services from span pairs,
// with the metric names and labels of Tempo's metrics-generator and the
// Collector's servicegraph connector:
//
//	traces_service_graph_request_total{client, server, connection_type}
//	traces_service_graph_request_failed_total
//	traces_service_graph_request_server_seconds_bucket / _sum / _count
//	traces_service_graph_request_client_seconds_bucket / _sum / _count
//
// A CLIENT span pairs with the SERVER span whose parent it is, a PRODUCER
// with its CONSUMER (connection_type "messaging_system"), in either order
// of arrival, within Wait. Peers that emit no spans become virtual nodes:
// databases (connection_type "database"), other callees named by the
// client span's attributes and, for root SERVER spans, the "user"
// (connection_type "virtual_node"). Samples are written at span time (see
// package series).
package servicegraph

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/spanmetrics"
	"github.com/trenchcoat/trenchcoat/internal/spanmetrics/series"
)

// Metric names, as Tempo writes them.
const (
	MetricRequests      = "traces_service_graph_request_total"
	MetricFailed        = "traces_service_graph_request_failed_total"
	MetricServerSeconds = "traces_service_graph_request_server_seconds" // _bucket, _sum, _count
	MetricClientSeconds = "traces_service_graph_request_client_seconds"
)

// Values of the connection_type label.
const (
	ConnDirect    = ""
	ConnMessaging = "messaging_system"
	ConnDatabase  = "database"
	ConnVirtual   = "virtual_node"
)

// UserNode is the client of root SERVER spans: whoever called the system
// from outside (Tempo's name for it).
const UserNode = "user"

// Config configures a Generator. Zero values take the defaults noted.
type Config struct {
	// Wait is how long one side of a pair waits for the other, in
	// wall-clock time since arrival. Default 10s.
	Wait time.Duration
	// SpanTimeWait also ends the wait once span time (the newest span end
	// seen) is this far past the span's end, whichever comes first. It
	// matters only for a backfill running faster than real time: with the
	// wall clock alone, an uninstrumented callee's edge would be written
	// far too late in span time (and dropped as too late). It is much
	// longer than Wait because services export separately, so in a
	// backfill the partner can trail by a batch's worth of span time (the
	// demo flushes every 5 minutes of span time). Default 10m.
	SpanTimeWait time.Duration
	// MaxItems caps the unpaired spans held; further ones are dropped and
	// counted (trenchcoat_servicegraph_dropped_spans_total{reason="max_items"}).
	// Default 10,000.
	MaxItems int
	// Interval between samples in span time; default 15s.
	Interval time.Duration
	// Lag is how far out of span-time order spans may arrive (SDK and
	// collector batching); default 10s. Intervals are written Wait+2*Lag
	// behind the newest span time, so that edges completed by pairing or
	// by the wall-clock Wait still land in their own interval.
	Lag time.Duration
	// StaleAfter: edges idle this long (span time) are no longer written;
	// default 15m.
	StaleAfter time.Duration
	// MaxLateness: spans ending this long before the last interval written
	// are dropped (counted as reason="too_late") instead of being counted
	// into the next interval; default 10m (see series.Config).
	MaxLateness time.Duration
	// MaxSeries caps the edges (label combinations); default 20,000.
	MaxSeries int
	// Dimensions are attribute keys (span, then resource) added as
	// client_<key> and server_<key> labels, dots as underscores. Default none.
	Dimensions []string
	// Buckets in seconds; default series.DefaultBuckets().
	Buckets    []float64
	Registerer prometheus.Registerer
	Logger     *slog.Logger

	now func() time.Time // tests
}

type edgeKey [24]byte // trace id, then the client/producer span id

// edge is a pair being assembled. Strings are interned copies, never
// pointers into pdata (which the caller reuses after ConsumeTraces).
type edge struct {
	key                  edgeKey
	client, server       string
	connType             string
	peer                 string // virtual node name from the client span
	clientDims           []string
	serverDims           []string
	clientSec, serverSec float64
	hasClient, hasServer bool
	failed               bool
	done                 bool  // paired or expired
	queued               bool  // still in the queue
	recording            bool  // in Generator.done, not yet recorded
	end                  int64 // newest span end of the pair, unix ns
	expireWall           int64 // unix ms
}

// Generator turns span pairs into service-graph metrics. ConsumeTraces is
// safe for concurrent use.
type Generator struct {
	reg        *series.Registry
	wait       time.Duration
	spanWait   int64 // ns: SpanTimeWait
	maxItems   int
	dims       []string
	labelNames []string // client_..., then server_...
	now        func() time.Time
	log        *slog.Logger

	mu         sync.Mutex
	edges      map[edgeKey]*edge
	queue      []*edge // arrival order; head at qhead
	qhead      int
	free       []*edge
	intern     map[string]string
	maxSpanEnd int64 // newest span end seen, unix ns, clamped to now
	h          maphash.Hash
	key        []string
	cDims      []string
	sDims      []string
	resVals    []string
	done       []*edge // completed in this batch, recorded at its end
	nPaired    int

	spans     prometheus.Counter
	paired    prometheus.Counter
	expired   *prometheus.CounterVec
	virtual   *prometheus.CounterVec
	pending   prometheus.Gauge
	maxDrops  prometheus.Counter
	shutdownM sync.Mutex
}

// New returns a generator that writes into app (tsdb.DB satisfies
// storage.AppendableV2).
func New(cfg Config, app storage.AppendableV2) (*Generator, error) {
	if cfg.Wait == 0 {
		cfg.Wait = 10 * time.Second
	}
	if cfg.Wait < 0 {
		return nil, fmt.Errorf("servicegraph: negative wait %s", cfg.Wait)
	}
	if cfg.SpanTimeWait == 0 {
		cfg.SpanTimeWait = 10 * time.Minute
	}
	if cfg.MaxItems == 0 {
		cfg.MaxItems = 10000
	}
	if cfg.Lag == 0 {
		cfg.Lag = 10 * time.Second
	}
	g := &Generator{
		wait:     cfg.Wait,
		spanWait: cfg.SpanTimeWait.Nanoseconds(),
		maxItems: cfg.MaxItems,
		dims:     cfg.Dimensions,
		now:      cfg.now,
		log:      cfg.Logger,
		edges:    map[edgeKey]*edge{},
		intern:   map[string]string{},
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.h.SetSeed(maphash.MakeSeed())
	seen := map[string]bool{"client": true, "server": true, "connection_type": true}
	for _, side := range []string{"client_", "server_"} {
		for _, d := range cfg.Dimensions {
			n := side + spanmetrics.SanitizeLabelName(d)
			if seen[n] {
				return nil, fmt.Errorf("servicegraph: dimension %q gives label %q twice", d, n)
			}
			seen[n] = true
			g.labelNames = append(g.labelNames, n)
		}
	}
	g.cDims = make([]string, len(g.dims))
	g.sDims = make([]string, len(g.dims))
	g.resVals = make([]string, len(g.dims))
	reg, err := series.New(series.Config{
		Shape: series.Shape{
			Counters:   []string{MetricRequests, MetricFailed},
			Histograms: []string{MetricServerSeconds, MetricClientSeconds},
		},
		Buckets:  cfg.Buckets,
		Interval: cfg.Interval,
		// An edge is known only once paired or expired (Wait after
		// arrival, which is up to Lag after its end); write after that.
		Lag:         cfg.Wait + 2*cfg.Lag,
		StaleAfter:  cfg.StaleAfter,
		MaxSeries:   cfg.MaxSeries,
		MaxLateness: cfg.MaxLateness,
		Labels:      g.labels,
		Subsystem:   "servicegraph",
		Registerer:  cfg.Registerer,
		Logger:      g.log,
		Now:         cfg.now,
		OnTick:      g.expireDue,
	}, app)
	if err != nil {
		return nil, fmt.Errorf("servicegraph: %w", err)
	}
	g.reg = reg
	g.maxDrops = reg.Dropped("max_items")
	g.spans = prometheus.NewCounter(prometheus.CounterOpts{Name: "trenchcoat_servicegraph_spans_total",
		Help: "Spans seen by the service-graph generator."})
	g.paired = prometheus.NewCounter(prometheus.CounterOpts{Name: "trenchcoat_servicegraph_paired_edges_total",
		Help: "Client/server and producer/consumer pairs matched."})
	g.expired = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trenchcoat_servicegraph_expired_edges_total",
		Help: "Spans whose partner did not arrive within the wait, by the side that did (client or server)."}, []string{"side"})
	g.virtual = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trenchcoat_servicegraph_virtual_edges_total",
		Help: "Requests to or from nodes that emit no spans (user, databases, uninstrumented peers)."}, []string{"connection_type"})
	g.pending = prometheus.NewGauge(prometheus.GaugeOpts{Name: "trenchcoat_servicegraph_pending_edges",
		Help: "Unpaired spans waiting for their partner."})
	g.expired.WithLabelValues("client")
	g.expired.WithLabelValues("server")
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{g.spans, g.paired, g.expired, g.virtual, g.pending} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("servicegraph: register self-metrics: %w", err)
			}
		}
	}
	return g, nil
}

// labels builds the base labels of a new series from its key:
// client, server, connection_type, client dims..., server dims....
func (g *Generator) labels(key []string, b *labels.ScratchBuilder) {
	b.Add("client", key[0])
	b.Add("server", key[1])
	if key[2] != "" {
		// An empty label is an absent label to Prometheus; writing it
		// would only give one series two spellings.
		b.Add("connection_type", key[2])
	}
	for i, n := range g.labelNames {
		if v := key[3+i]; v != "" {
			b.Add(n, v)
		}
	}
	b.Sort()
}

// ConsumeTraces pairs the spans of td with those seen before. It does not
// write to the metric store (a background loop does, see Start). td is not
// retained.
func (g *Generator) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	nowT := g.now()
	nowMs := nowT.UnixMilli()
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		svc := spanmetrics.ServiceName(res)
		for d, k := range g.dims {
			g.resVals[d] = ""
			if v, ok := res.Get(k); ok {
				g.resVals[d] = v.AsString()
			}
		}
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			n += spans.Len()
			for k := range spans.Len() {
				g.span(svc, spans.At(k), nowMs)
			}
		}
	}
	g.expireLocked(nowMs)
	g.recordLocked()
	g.pending.Set(float64(len(g.edges)))
	g.spans.Add(float64(n))
	g.paired.Add(float64(g.nPaired))
	g.nPaired = 0
	return nil
}

func (g *Generator) span(svc string, sp ptrace.Span, nowMs int64) {
	end := int64(sp.EndTimestamp())
	if lim := nowMs * 1e6; end > lim {
		end = lim // clock skew: a span from the future would expire everything
	}
	g.maxSpanEnd = max(g.maxSpanEnd, end)
	kind := sp.Kind()
	var isClient bool
	switch kind {
	case ptrace.SpanKindClient, ptrace.SpanKindProducer:
		isClient = true
	case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
	default:
		return
	}
	attrs := sp.Attributes()
	failed := sp.Status().Code() == ptrace.StatusCodeError
	secs := seconds(sp)

	if kind == ptrace.SpanKindClient {
		if db, ok := databaseName(attrs); ok {
			// No database emits server spans, so waiting for a partner would
			// only hold memory for Wait and write the edge late: complete now.
			e := g.alloc()
			e.client, e.server, e.connType = g.str(svc), g.str(db), ConnDatabase
			e.hasClient, e.clientSec, e.failed, e.end = true, secs, failed, end
			e.clientDims = g.sideDims(e.clientDims, attrs)
			g.virtual.WithLabelValues(ConnDatabase).Inc()
			g.finish(e)
			return
		}
	}
	if kind == ptrace.SpanKindServer && sp.ParentSpanID().IsEmpty() {
		// A root server span: the request came from outside, the "user".
		e := g.alloc()
		e.client, e.server, e.connType = UserNode, g.str(svc), ConnVirtual
		e.hasServer, e.serverSec, e.failed, e.end = true, secs, failed, end
		e.serverDims = g.sideDims(e.serverDims, attrs)
		g.virtual.WithLabelValues(ConnVirtual).Inc()
		g.finish(e)
		return
	}

	var key edgeKey
	tid := sp.TraceID()
	copy(key[:16], tid[:])
	if isClient {
		sid := sp.SpanID()
		copy(key[16:], sid[:])
	} else {
		pid := sp.ParentSpanID()
		if pid.IsEmpty() {
			return // a root consumer: no producer to pair with
		}
		copy(key[16:], pid[:])
	}
	e := g.edges[key]
	if e == nil {
		if len(g.edges) >= g.maxItems {
			g.maxDrops.Inc()
			return
		}
		e = g.alloc()
		e.key = key
		e.expireWall = nowMs + g.wait.Milliseconds()
		e.queued = true
		g.edges[key] = e
		g.queue = append(g.queue, e)
	} else if isClient && e.hasClient || !isClient && e.hasServer {
		return // a duplicate (a retried export): count the pair once
	}
	e.failed = e.failed || failed
	e.end = max(e.end, end)
	if kind == ptrace.SpanKindProducer || kind == ptrace.SpanKindConsumer {
		e.connType = ConnMessaging
	}
	if isClient {
		e.hasClient, e.client, e.clientSec = true, g.str(svc), secs
		e.clientDims = g.sideDims(e.clientDims, attrs)
		if kind == ptrace.SpanKindClient {
			e.peer = g.str(peerName(attrs))
		}
	} else {
		e.hasServer, e.server, e.serverSec = true, g.str(svc), secs
		e.serverDims = g.sideDims(e.serverDims, attrs)
	}
	if e.hasClient && e.hasServer {
		g.nPaired++ // added to the counter once per batch: Inc is atomic
		g.finish(e)
	}
}

// sideDims fills a side's dimension values: span attribute, else resource.
func (g *Generator) sideDims(dst []string, attrs pcommon.Map) []string {
	if len(g.dims) == 0 {
		return nil
	}
	dst = dst[:0]
	for d, k := range g.dims {
		v := g.resVals[d]
		if a, ok := attrs.Get(k); ok {
			v = a.AsString()
		}
		dst = append(dst, g.str(v))
	}
	return dst
}

// databaseName names the node of a database client span, or reports that
// the span is not a database call. server.address comes first because it
// names the database server, the thing that runs out of connections or
// CPU: naming the node by db.namespace would split one shared server into
// one node per logical database and hide that they contend for it. The
// namespace is next best (it still tells databases apart when no address
// is recorded), and db.system(.name) last, as it names only the product
// ("postgresql") and would merge unrelated databases into one node.
func databaseName(attrs pcommon.Map) (string, bool) {
	sys, ok := attrs.Get("db.system.name")
	if !ok {
		if sys, ok = attrs.Get("db.system"); !ok {
			return "", false
		}
	}
	for _, k := range []string{"server.address", "db.namespace", "db.name"} {
		if v, ok := attrs.Get(k); ok && v.AsString() != "" {
			return v.AsString(), true
		}
	}
	if s := sys.AsString(); s != "" {
		return s, true
	}
	return "database", true
}

// peerName names an uninstrumented callee from a client span.
// peer.service comes first because someone set it on purpose to the
// callee's logical name; server.address (and its older spelling
// net.peer.name) is the host called, which is what is left otherwise.
func peerName(attrs pcommon.Map) string {
	for _, k := range []string{"peer.service", "server.address", "net.peer.name"} {
		if v, ok := attrs.Get(k); ok && v.AsString() != "" {
			return v.AsString()
		}
	}
	return ""
}

func seconds(sp ptrace.Span) float64 {
	s, e := sp.StartTimestamp(), sp.EndTimestamp()
	if e <= s {
		return 0
	}
	return float64(e-s) / 1e9
}

// str returns an interned copy of s: service and peer names repeat, and
// the copy must not alias pdata memory.
func (g *Generator) str(s string) string {
	if v, ok := g.intern[s]; ok {
		return v
	}
	c := string([]byte(s))
	if len(g.intern) < 100000 {
		g.intern[c] = c
	}
	return c
}

func (g *Generator) alloc() *edge {
	if n := len(g.free); n > 0 {
		e := g.free[n-1]
		g.free = g.free[:n-1]
		return e
	}
	return &edge{}
}

func (g *Generator) release(e *edge) {
	cd, sd := e.clientDims[:0], e.serverDims[:0]
	*e = edge{clientDims: cd, serverDims: sd}
	if len(g.free) < 4096 {
		g.free = append(g.free, e)
	}
}

// expireDue is the loop's tick: expire on the wall clock even when no
// spans arrive.
func (g *Generator) expireDue() {
	nowMs := g.now().UnixMilli()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireLocked(nowMs)
	g.recordLocked()
	g.pending.Set(float64(len(g.edges)))
}

// expireLocked ends the wait of the unpaired spans that are due: Wait
// after arrival on the wall clock, or SpanTimeWait after the span's end in
// span time (the newest span end seen), whichever comes first. The queue is in
// arrival order, which is also expiry order for the wall clock and close
// to it for span time (a span arriving out of order may wait a little
// longer than it would need to; that is harmless).
func (g *Generator) expireLocked(nowMs int64) {
	for g.qhead < len(g.queue) {
		e := g.queue[g.qhead]
		if !e.done {
			if e.expireWall > nowMs && e.end+g.spanWait > g.maxSpanEnd {
				break
			}
			g.expire(e)
		}
		g.queue[g.qhead] = nil
		g.qhead++
		e.queued = false
		if !e.recording {
			g.release(e)
		}
	}
	// Reclaim the consumed head of the queue now and then.
	if g.qhead > 1024 && g.qhead*2 > len(g.queue) {
		n := copy(g.queue, g.queue[g.qhead:])
		clear(g.queue[n:])
		g.queue = g.queue[:n]
		g.qhead = 0
	}
}

// finish marks e complete and queues it for recording.
func (g *Generator) finish(e *edge) {
	delete(g.edges, e.key)
	e.done, e.recording = true, true
	g.done = append(g.done, e)
}

func (g *Generator) expire(e *edge) {
	delete(g.edges, e.key)
	e.done = true
	if e.hasClient {
		g.expired.WithLabelValues("client").Inc()
		if e.connType == ConnDirect && e.peer != "" {
			// An uninstrumented callee: an edge to a virtual node.
			e.server, e.connType = e.peer, ConnVirtual
			g.virtual.WithLabelValues(ConnVirtual).Inc()
			g.finish(e)
		}
		return
	}
	// A server or consumer span whose caller sent no span: there is no
	// name for the caller, so it is only counted.
	g.expired.WithLabelValues("server").Inc()
}

// recordLocked adds the edges completed since the last call to the
// registry and releases those no longer in the queue.
func (g *Generator) recordLocked() {
	if len(g.done) == 0 {
		return
	}
	tx := g.reg.Begin()
	for _, e := range g.done {
		key := append(g.key[:0], e.client, e.server, e.connType)
		key = appendDims(key, e.clientDims, len(g.dims))
		key = appendDims(key, e.serverDims, len(g.dims))
		g.key = key
		if tx.TooOld(e.end) {
			continue
		}
		s := tx.Series(g.hash(key), key)
		if s == nil {
			continue
		}
		d := tx.Delta(s, e.end)
		if d == nil {
			continue
		}
		d[0]++
		if e.failed {
			d[1]++
		}
		// Only the sides that were seen: a zero for the missing side would
		// drag the percentiles of that histogram down.
		if e.hasServer {
			tx.Observe(d, 0, e.serverSec)
		}
		if e.hasClient {
			tx.Observe(d, 1, e.clientSec)
		}
	}
	tx.End()
	for i, e := range g.done {
		// Edges still in the queue are released when the queue reaches them.
		e.recording = false
		if !e.queued {
			g.release(e)
		}
		g.done[i] = nil
	}
	g.done = g.done[:0]
}

func appendDims(key, dims []string, n int) []string {
	if len(dims) == 0 {
		for range n {
			key = append(key, "")
		}
		return key
	}
	return append(key, dims...)
}

func (g *Generator) hash(key []string) uint64 {
	g.h.Reset()
	for _, k := range key {
		g.h.WriteString(k)
		g.h.WriteByte(0xff)
	}
	return g.h.Sum64()
}

// Start runs the loop that expires unpaired spans and writes samples.
// ctx is only for starting; Shutdown stops the loop.
func (g *Generator) Start(ctx context.Context) error { return g.reg.Start(ctx) }

// Shutdown stops the loop, ends the wait of every unpaired span (so
// uninstrumented callees still get their edge) and writes everything
// counted. Safe to call twice and without Start.
func (g *Generator) Shutdown(ctx context.Context) error {
	g.shutdownM.Lock()
	defer g.shutdownM.Unlock()
	if err := g.reg.Stop(ctx); err != nil {
		return fmt.Errorf("servicegraph: %w", err)
	}
	g.mu.Lock()
	g.expireLocked(1<<62 - 1)
	g.recordLocked()
	g.pending.Set(float64(len(g.edges)))
	g.mu.Unlock()
	return g.reg.Flush(ctx)
}
