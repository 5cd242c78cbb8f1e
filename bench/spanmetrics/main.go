// Command spanmetrics measures what the span-metrics and service-graph
// generators cost span ingest: in one process and one run, batches of
// 1,000 demo-shaped spans (internal/spangen) go through pipeline.New into
// a columnar store, once without generators and once with both writing
// into a metric store, alternating phases (ABBA, after a warm-up) so that load from elsewhere on
// the machine falls on both alike. It prints one figure per line:
//
//	spans/s without generators
//	spans/s with generators
//	overhead ratio (1 - with/without; the target is <= 0.15)
//	generators' share of the with-phase's pipeline time (a steadier
//	estimate of the same cost when other load on the machine makes the
//	throughput difference noisy)
//
//	go run ./bench/spanmetrics -duration 20s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/pipeline"
	"github.com/trenchcoat/trenchcoat/internal/servicegraph"
	"github.com/trenchcoat/trenchcoat/internal/spangen"
	"github.com/trenchcoat/trenchcoat/internal/spanmetrics"
	"github.com/trenchcoat/trenchcoat/internal/store/columnar"
	"github.com/trenchcoat/trenchcoat/internal/store/tsdb"
)

func main() {
	duration := flag.Duration("duration", 20*time.Second, "ingest time of each configuration")
	rounds := flag.Int("rounds", 2, "alternations of the two configurations (each phase lasts duration/rounds)")
	workers := flag.Int("workers", 2*runtime.GOMAXPROCS(0), "concurrent writers")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "spanmetrics:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*duration, *rounds, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "spanmetrics:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(duration time.Duration, rounds, workers int) error {
	if rounds < 1 || workers < 1 || duration <= 0 {
		return fmt.Errorf("duration, rounds and workers must be positive")
	}
	tmp, err := os.MkdirTemp("", "tc-bench-spanmetrics")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	batches := make([]ptrace.Traces, 64)
	now := time.Now()
	for i := range batches {
		batches[i] = spangen.Spans(int64(i), 1000, now)
	}
	phase := duration / time.Duration(rounds)
	var spans [2]int64
	var elapsed [2]time.Duration
	var share timing
	// A discarded warm-up, then ABBA order: the first phase of a process
	// runs colder (heap growth, page cache) and must not fall on one side.
	if _, _, err := ingest(filepath.Join(tmp, "warmup"), true, batches, min(phase, 2*time.Second), workers, &timing{}); err != nil {
		return err
	}
	for r := range rounds {
		for k := range 2 {
			with := k
			if r%2 == 1 {
				with = 1 - k
			}
			n, d, err := ingest(filepath.Join(tmp, fmt.Sprintf("r%d-%d", r, with)), with == 1, batches, phase, workers, &share)
			if err != nil {
				return err
			}
			spans[with] += n
			elapsed[with] += d
		}
	}
	without := float64(spans[0]) / elapsed[0].Seconds()
	with := float64(spans[1]) / elapsed[1].Seconds()
	fmt.Printf("%.0f spans/s without generators\n", without)
	fmt.Printf("%.0f spans/s with span metrics and service graph\n", with)
	fmt.Printf("%.3f overhead ratio (1 - with/without)\n", 1-with/without)
	fmt.Printf("%.3f generators' share of pipeline time\n", float64(share.gen.Load())/float64(share.total.Load()))
	return nil
}

// ingest writes batches through a fresh pipeline for d and returns the
// spans acknowledged and the time taken. With generators, the time
// includes their shutdown (the final flush into the metric store).
func ingest(dir string, withGen bool, batches []ptrace.Traces, d time.Duration, workers int, tm *timing) (int64, time.Duration, error) {
	ctx := context.Background()
	cs, err := columnar.Open(columnar.Config{Dir: filepath.Join(dir, "spans")})
	if err != nil {
		return 0, 0, err
	}
	defer cs.Close()
	cfg := pipeline.Config{Traces: cs, Logs: cs, MaxInFlight: workers, AdmitWait: time.Minute}
	var stops []func(context.Context) error
	if withGen {
		ms, err := tsdb.Open(tsdb.Config{Dir: filepath.Join(dir, "metrics")})
		if err != nil {
			return 0, 0, err
		}
		defer ms.Close()
		sm, err := spanmetrics.New(spanmetrics.Config{}, ms.AppendableV2())
		if err != nil {
			return 0, 0, err
		}
		sg, err := servicegraph.New(servicegraph.Config{}, ms.AppendableV2())
		if err != nil {
			return 0, 0, err
		}
		for _, g := range []interface {
			pipeline.TraceConsumer
			Start(context.Context) error
			Shutdown(context.Context) error
		}{sm, sg} {
			if err := g.Start(ctx); err != nil {
				return 0, 0, err
			}
			cfg.Generators = append(cfg.Generators, timed{g, tm})
			stops = append(stops, g.Shutdown)
		}
	}
	p, err := pipeline.New(cfg)
	if err != nil {
		return 0, 0, err
	}
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i += workers {
				td := batches[i%len(batches)]
				t0 := time.Now()
				err := p.ConsumeTraces(ctx, td)
				if withGen {
					tm.total.Add(int64(time.Since(t0)))
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(int64(td.SpanCount()))
			}
		}()
	}
	wg.Wait()
	for _, stop := range stops {
		if err := stop(ctx); err != nil {
			return 0, 0, err
		}
	}
	return n.Load(), time.Since(start), firstErr
}

// timing sums nanoseconds spent in the generators and in the pipeline
// calls that include them.
type timing struct{ gen, total atomic.Int64 }

type timed struct {
	pipeline.TraceConsumer
	t *timing
}

func (g timed) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	t0 := time.Now()
	err := g.TraceConsumer.ConsumeTraces(ctx, td)
	g.t.gen.Add(int64(time.Since(t0)))
	return err
}
