package demo

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The fixed facts of the pretend AWS account.
const (
	account     = "731294056182"
	region      = "us-east-1"
	clusterName = "tickets-cluster"
	envName     = "production"
	serverName  = "tickets-server"
	serverVer   = "1.4.2"
	dbName      = "ticketsdb"
	maxConns    = 40 // max_connections of tickets-database
	reservedSU  = 3  // superuser_reserved_connections
	poolMax     = 10 // per tickets-server task
)

var zones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

// Error texts as the workshop shows them (RDS and node-postgres wording).
const (
	errReserved = "remaining connection slots are reserved for non-replication superuser and rds_reserved connections"
	errTooMany  = "sorry, too many clients already"
	errTimeout  = "timeout exceeded when trying to connect"
	errRecovery = "the database system is in recovery mode"
	errCrashed  = "terminating connection because of crash of another server process"
)

// state is what the demo keeps in DataDir between runs.
type state struct {
	DBID       string `json:"db_id"`   // 6 hex chars, fixed per data dir
	DBHostTag  string `json:"db_host"` // the random label in the RDS endpoint
	Backfilled bool   `json:"-"`       // from the marker file

	dbOnce  sync.Once
	dbAttrs []attribute.KeyValue // the database span attributes, made once
}

const (
	stateFile  = "demo-state.json"
	markerFile = "backfill.done"
)

func loadState(dir string, seed int64) (*state, error) {
	if dir == "" {
		// Sim without a data dir: derive the ids from the seed.
		r := rand.New(rand.NewPCG(uint64(seed), 0xdb))
		return &state{DBID: randHex(r, 3), DBHostTag: randLower(r, 12)}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("demo: data dir: %w", err)
	}
	st := &state{}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("demo: %s: %w", stateFile, err)
		}
	case errors.Is(err, os.ErrNotExist):
		var seedBytes [16]byte
		_, _ = crand.Read(seedBytes[:])
		r := rand.New(rand.NewChaCha8(sha32(seedBytes[:])))
		st.DBID, st.DBHostTag = randHex(r, 3), randLower(r, 12)
		b, _ := json.MarshalIndent(st, "", "  ")
		tmp := filepath.Join(dir, stateFile+".tmp")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	default:
		return nil, fmt.Errorf("demo: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, markerFile)); err == nil {
		st.Backfilled = true
	}
	return st, nil
}

func (st *state) save(dir string) error {
	if dir == "" || !st.Backfilled {
		return nil
	}
	return os.WriteFile(filepath.Join(dir, markerFile), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
}

func sha32(b []byte) [32]byte {
	var out [32]byte
	copy(out[:], b)
	return out
}

func (st *state) dbInstance() string { return "tickets-database-" + st.DBID }
func (st *state) dbHost() string {
	return st.dbInstance() + "." + st.DBHostTag + "." + region + ".rds.amazonaws.com"
}
func (st *state) logGroup() string { return "/aws/rds/instance/" + st.dbInstance() + "/postgresql" }

func randHex(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return hex.EncodeToString(b)
}

func randLower(r *rand.Rand, n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b)
}

// Resources, with the attributes AWS resource detectors would set.

func cloudAttrs(platform, az, resourceID string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("deployment.environment.name", envName),
		attribute.String("cloud.provider", "aws"),
		attribute.String("cloud.platform", platform),
		attribute.String("cloud.region", region),
		attribute.String("cloud.availability_zone", az),
		attribute.String("cloud.account.id", account),
		attribute.String("cloud.resource_id", resourceID),
	}
}

func ecsTaskARN(taskID string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:task/%s/%s", region, account, clusterName, taskID)
}

func ecsResource(taskID, az, version string) *resource.Resource {
	arn := ecsTaskARN(taskID)
	attrs := append(cloudAttrs("aws_ecs", az, arn),
		attribute.String("service.name", serverName),
		attribute.String("service.version", version),
		attribute.String("service.instance.id", taskID),
		attribute.String("aws.ecs.task.arn", arn),
		attribute.String("aws.ecs.task.family", serverName),
		attribute.String("aws.ecs.task.revision", "17"),
		attribute.String("aws.ecs.cluster.arn", fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", region, account, clusterName)),
		attribute.String("aws.ecs.launchtype", "fargate"),
		attribute.StringSlice("aws.log.group.names", []string{"/ecs/" + serverName}),
	)
	return resource.NewSchemaless(attrs...)
}

func lambdaResource(fn *lambdaFn, az, instance string) *resource.Resource {
	arn := fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, account, fn.name)
	attrs := append(cloudAttrs("aws_lambda", az, arn),
		attribute.String("service.name", fn.name),
		attribute.String("service.version", fn.version),
		attribute.String("faas.name", fn.name),
		attribute.String("faas.version", fn.version),
		attribute.String("faas.instance", instance),
		attribute.Int("faas.max_memory", fn.memoryMB*1024*1024),
		attribute.StringSlice("aws.log.group.names", []string{"/aws/lambda/" + fn.name}),
	)
	return resource.NewSchemaless(attrs...)
}

func rdsResource(st *state) *resource.Resource {
	attrs := append(cloudAttrs("aws_rds", zones[0], fmt.Sprintf("arn:aws:rds:%s:%s:db:%s", region, account, st.dbInstance())),
		attribute.String("service.name", "tickets-database"),
		attribute.String("db.system.name", "postgresql"),
		attribute.StringSlice("aws.log.group.names", []string{st.logGroup()}),
	)
	return resource.NewSchemaless(attrs...)
}

func cloudwatchResource() *resource.Resource {
	return resource.NewSchemaless(
		attribute.String("service.name", "cloudwatch-metric-stream"),
		attribute.String("cloud.provider", "aws"),
		attribute.String("cloud.region", region),
		attribute.String("cloud.account.id", account),
	)
}

// hub owns the OTLP exporters, shared by every simulated resource: one gRPC
// connection, one exporter per signal, one SDK provider per resource (the
// resource is per provider in the SDK).
type hub struct {
	conn    *grpc.ClientConn
	spans   *otlptraceExporter
	logs    sdklog.Exporter
	metrics *otlpmetricgrpc.Exporter
	mmu     sync.Mutex // Export must not be called concurrently
	ids     *idGen
	// blocking makes new providers wait for the exporter instead of
	// dropping spans: right for generated worlds, wrong for live services,
	// which must not stall when the platform does.
	blocking atomic.Bool

	retiring sync.WaitGroup

	mu   sync.Mutex
	tps  []*sdktrace.TracerProvider
	lps  []*sdklog.LoggerProvider
	done bool
}

type otlptraceExporter = sharedSpanExporter

func newHub(endpoint string, seed int64) (*hub, error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("demo: otlp: %w", err)
	}
	ctx := context.Background()
	te, err := otlptracegrpc.New(ctx, otlptracegrpc.WithGRPCConn(conn))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("demo: otlp traces: %w", err)
	}
	le, err := otlploggrpc.New(ctx, otlploggrpc.WithGRPCConn(conn))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("demo: otlp logs: %w", err)
	}
	me, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithGRPCConn(conn))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("demo: otlp metrics: %w", err)
	}
	return &hub{
		conn: conn, spans: &sharedSpanExporter{te}, logs: sharedLogExporter{le}, metrics: me,
		ids: newIDGen(seed),
	}, nil
}

// sharedSpanExporter keeps one provider's shutdown from closing the
// exporter the others still use.
type sharedSpanExporter struct{ sdktrace.SpanExporter }

func (sharedSpanExporter) Shutdown(context.Context) error { return nil }

type sharedLogExporter struct{ sdklog.Exporter }

func (sharedLogExporter) Shutdown(context.Context) error { return nil }

// tracerProvider returns a new provider for one resource. Blocking makes the
// batcher wait rather than drop spans when a backfill outruns the exporter.
func (h *hub) tracerProvider(res *resource.Resource) *sdktrace.TracerProvider {
	opts := []sdktrace.BatchSpanProcessorOption{sdktrace.WithBatchTimeout(time.Second)}
	if h.blocking.Load() {
		opts = append(opts, sdktrace.WithBlocking(), sdktrace.WithMaxQueueSize(8192))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithIDGenerator(h.ids),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(h.spans, opts...),
	)
	h.mu.Lock()
	h.tps = append(h.tps, tp)
	h.mu.Unlock()
	return tp
}

func (h *hub) loggerProvider(res *resource.Resource) *sdklog.LoggerProvider {
	lp := sdklog.NewLoggerProvider(
		sdklog.WithResource(res),
		sdklog.WithProcessor(sdklog.NewBatchProcessor(h.logs, sdklog.WithMaxQueueSize(16384), sdklog.WithExportInterval(time.Second))),
	)
	h.mu.Lock()
	h.lps = append(h.lps, lp)
	h.mu.Unlock()
	return lp
}

// retireAsync retires in the background; shutdown waits for it.
func (h *hub) retireAsync(tp *sdktrace.TracerProvider) { h.retiring.Go(func() { h.retire(tp) }) }

// retire shuts a provider down (flushing its spans).
func (h *hub) retire(tp *sdktrace.TracerProvider) {
	h.mu.Lock()
	for i, p := range h.tps {
		if p == tp {
			h.tps = append(h.tps[:i], h.tps[i+1:]...)
			break
		}
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tp.Shutdown(ctx)
}

// flush pushes everything buffered; the backfill calls it to pace itself.
func (h *hub) flush(ctx context.Context) {
	h.mu.Lock()
	tps, lps := append([]*sdktrace.TracerProvider(nil), h.tps...), append([]*sdklog.LoggerProvider(nil), h.lps...)
	h.mu.Unlock()
	for _, tp := range tps {
		_ = tp.ForceFlush(ctx)
	}
	for _, lp := range lps {
		_ = lp.ForceFlush(ctx)
	}
}

// exportGauges sends one batch of unit-less gauges (names kept as they are
// by the Prometheus translation) with an explicit timestamp.
func (h *hub) exportGauges(ctx context.Context, res *resource.Resource, at time.Time, gs []gauge) error {
	ms := make([]metricdata.Metrics, 0, len(gs))
	for _, g := range gs {
		ms = append(ms, metricdata.Metrics{
			Name: g.name,
			Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{{
				Attributes: attribute.NewSet(g.attrs...), Time: at, Value: g.value,
			}}},
		})
	}
	rm := &metricdata.ResourceMetrics{Resource: res, ScopeMetrics: []metricdata.ScopeMetrics{{
		Scope: instrumentationScope, Metrics: ms,
	}}}
	h.mmu.Lock()
	defer h.mmu.Unlock()
	return h.metrics.Export(ctx, rm)
}

type gauge struct {
	name  string
	value float64
	attrs []attribute.KeyValue
}

func (h *hub) shutdown(ctx context.Context) {
	h.mu.Lock()
	if h.done {
		h.mu.Unlock()
		return
	}
	h.done = true
	h.mu.Unlock()
	h.retiring.Wait()
	h.mu.Lock()
	tps, lps := h.tps, h.lps
	h.tps, h.lps = nil, nil
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, tp := range tps {
		wg.Go(func() { _ = tp.Shutdown(ctx) })
	}
	for _, lp := range lps {
		wg.Go(func() { _ = lp.Shutdown(ctx) })
	}
	wg.Wait()
	_ = h.spans.SpanExporter.Shutdown(ctx)
	_ = h.logs.(sharedLogExporter).Exporter.Shutdown(ctx)
	_ = h.metrics.Shutdown(ctx)
	_ = h.conn.Close()
}

// idGen makes trace and span ids from a seeded generator, so that a backfill
// is the same for the same seed.
type idGen struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newIDGen(seed int64) *idGen {
	return &idGen{r: rand.New(rand.NewPCG(uint64(seed), 0x1d5))}
}

func (g *idGen) reseed(seed int64) {
	g.mu.Lock()
	g.r = rand.New(rand.NewPCG(uint64(seed), 0x1d5))
	g.mu.Unlock()
}

func (g *idGen) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var tid trace.TraceID
	var sid trace.SpanID
	for !tid.IsValid() {
		putU64(tid[:8], g.r.Uint64())
		putU64(tid[8:], g.r.Uint64())
	}
	for !sid.IsValid() {
		putU64(sid[:], g.r.Uint64())
	}
	return tid, sid
}

func (g *idGen) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	g.mu.Lock()
	defer g.mu.Unlock()
	var sid trace.SpanID
	for !sid.IsValid() {
		putU64(sid[:], g.r.Uint64())
	}
	return sid
}

func putU64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// pgLinePrefix formats an RDS-style log line prefix (%t:%r:%u@%d:[%p]:).
func pgLinePrefix(t time.Time, remote, user, db string, pid int) string {
	return fmt.Sprintf("%s:%s:%s@%s:[%d]:", t.UTC().Format("2006-01-02 15:04:05 UTC"), remote, user, db, pid)
}

// rdsWording rewrites PostgreSQL 15's messages into what RDS prints.
func rdsWording(msg string) string {
	return strings.Replace(msg, "remaining connection slots are reserved for non-replication superuser connections", errReserved, 1)
}
