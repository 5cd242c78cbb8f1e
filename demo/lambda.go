package demo

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

var instrumentationScope = instrumentation.Scope{Name: "github.com/trenchcoat/trenchcoat/demo", Version: "0.1.0"}

// rnd is a rand.Rand safe for concurrent use (the live world's goroutines
// share it; the simulated world uses it from one goroutine, deterministically).
type rnd struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newRnd(seed int64, stream uint64) *rnd {
	return &rnd{r: rand.New(rand.NewPCG(uint64(seed), stream))}
}

func (r *rnd) Float64() float64 { r.mu.Lock(); defer r.mu.Unlock(); return r.r.Float64() }
func (r *rnd) IntN(n int) int   { r.mu.Lock(); defer r.mu.Unlock(); return r.r.IntN(n) }
func (r *rnd) Norm() float64    { r.mu.Lock(); defer r.mu.Unlock(); return r.r.NormFloat64() }
func (r *rnd) Exp() float64     { r.mu.Lock(); defer r.mu.Unlock(); return r.r.ExpFloat64() }
func (r *rnd) Hex(n int) string { r.mu.Lock(); defer r.mu.Unlock(); return randHex(r.r, n) }

// between returns a uniform duration in [a, b).
func (r *rnd) between(a, b time.Duration) time.Duration {
	return a + time.Duration(r.Float64()*float64(b-a))
}

// lognormal returns a duration with the given median and spread (sigma).
func (r *rnd) lognormal(median time.Duration, sigma float64) time.Duration {
	return time.Duration(float64(median) * expf(sigma*r.Norm()))
}

// lambdaFn is one Lambda function: a pool of execution environments
// (instances), each its own OpenTelemetry resource because faas.instance is
// a resource attribute. New instances are cold starts; the concurrency limit
// throttles invocations beyond it.
type lambdaFn struct {
	name, version string
	memoryMB      int
	limit         int
	trigger       string
	h             *hub
	r             *rnd

	mu    sync.Mutex
	insts []*lambdaInstance
	nz    int
	stats fnStats
}

type fnStats struct {
	invocations, errors, throttles float64
	durSumMS, durN                 float64
	maxConc                        int
}

type lambdaInstance struct {
	id        string
	az        string
	tp        *sdktrace.TracerProvider
	tracer    trace.Tracer
	busyUntil time.Time
	lastUsed  time.Time
	warm      bool
}

func newLambdaFns(h *hub, r *rnd, scale int) map[string]*lambdaFn {
	mk := func(name, ver string, mem, limit int, trigger string) *lambdaFn {
		return &lambdaFn{name: name, version: ver, memoryMB: mem, limit: limit, trigger: trigger, h: h, r: r}
	}
	return map[string]*lambdaFn{
		"tickets-api":      mk("tickets-api", "42", 512, 60*scale, "http"),
		"tickets-orders":   mk("tickets-orders", "17", 256, 10*scale, "pubsub"),
		"tickets-payments": mk("tickets-payments", "9", 256, 4*scale, "other"),
		"tickets-notify":   mk("tickets-notify", "5", 128, 5*scale, "other"),
	}
}

// acquire picks a free instance at now (busy until the caller releases
// it), starting a new one when none is free: cold. ok is false when the
// concurrency limit throttles the invocation.
func (f *lambdaFn) acquire(now time.Time) (inst *lambdaInstance, cold, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	busy := 0
	for _, in := range f.insts {
		if !in.busyUntil.After(now) {
			if inst == nil || in.lastUsed.After(inst.lastUsed) {
				inst = in
			}
		} else {
			busy++
		}
	}
	if inst == nil {
		if len(f.insts) >= f.limit {
			f.stats.throttles++
			return nil, false, false
		}
		az := zones[f.nz%len(zones)]
		f.nz++
		id := fmt.Sprintf("%s/[%s]%s", now.UTC().Format("2006/01/02"), f.version, f.r.Hex(16))
		inst = &lambdaInstance{id: id, az: az}
		inst.tp = f.h.tracerProvider(lambdaResource(f, az, id))
		inst.tracer = inst.tp.Tracer(instrumentationScope.Name, trace.WithInstrumentationVersion(instrumentationScope.Version))
		f.insts = append(f.insts, inst)
	}
	cold = !inst.warm
	inst.warm = true
	inst.busyUntil = now.Add(time.Hour) // until release
	inst.lastUsed = now
	if busy+1 > f.stats.maxConc {
		f.stats.maxConc = busy + 1
	}
	return inst, cold, true
}

// release marks the invocation finished at end.
func (f *lambdaFn) release(inst *lambdaInstance, start, end time.Time, failed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inst.busyUntil = end
	inst.lastUsed = end
	f.stats.invocations++
	if failed {
		f.stats.errors++
	}
	f.stats.durSumMS += float64(end.Sub(start)) / float64(time.Millisecond)
	f.stats.durN++
}

// reap retires instances idle for longer than Lambda keeps them warm.
func (f *lambdaFn) reap(now time.Time, idle time.Duration) {
	f.mu.Lock()
	var keep []*lambdaInstance
	var gone []*sdktrace.TracerProvider
	for _, in := range f.insts {
		if !in.busyUntil.After(now) && now.Sub(in.lastUsed) > idle {
			gone = append(gone, in.tp)
			continue
		}
		keep = append(keep, in)
	}
	f.insts = keep
	f.mu.Unlock()
	for _, tp := range gone {
		f.h.retireAsync(tp)
	}
}

// takeStats returns and resets the counters of the current metric period.
func (f *lambdaFn) takeStats(now time.Time) fnStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	busy := 0
	for _, in := range f.insts {
		if in.busyUntil.After(now) {
			busy++
		}
	}
	f.stats = fnStats{maxConc: busy}
	return s
}
