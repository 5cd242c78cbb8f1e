package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trenchcoat/trenchcoat/internal/alerting"
	"github.com/trenchcoat/trenchcoat/internal/api"
	"github.com/trenchcoat/trenchcoat/internal/investigate"
	"github.com/trenchcoat/trenchcoat/internal/otlp"
	"github.com/trenchcoat/trenchcoat/internal/pipeline"
	"github.com/trenchcoat/trenchcoat/internal/query/prom"
	"github.com/trenchcoat/trenchcoat/internal/servicegraph"
	"github.com/trenchcoat/trenchcoat/internal/servicemap"
	"github.com/trenchcoat/trenchcoat/internal/spanmetrics"
	"github.com/trenchcoat/trenchcoat/internal/store/columnar"
	"github.com/trenchcoat/trenchcoat/internal/store/tsdb"
	"github.com/trenchcoat/trenchcoat/internal/ui"
)

// serveConfig holds every flag of `serve` (and so of `demo`).
type serveConfig struct {
	HTTPAddr        string
	OTLPGRPCAddr    string
	OTLPHTTPAddr    string
	DataDir         string
	Retention       time.Duration
	MaxDiskBytes    int64
	MaxRequestBytes int64
	SLODir          string
	AlertmanagerURL string
	LogLevel        string
	MemoryLimitMiB  int64
}

func (c *serveConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:3300", "UI and HTTP API listen address (port 0 picks a free port)")
	fs.StringVar(&c.OTLPGRPCAddr, "otlp-grpc-addr", "127.0.0.1:4317", "OTLP/gRPC listen address")
	fs.StringVar(&c.OTLPHTTPAddr, "otlp-http-addr", "127.0.0.1:4318", "OTLP/HTTP listen address")
	fs.StringVar(&c.DataDir, "data-dir", "./trenchcoat-data", "where data lives")
	c.Retention = 7 * 24 * time.Hour
	fs.Var(durationFlag{&c.Retention}, "retention", "how long spans, logs and metrics are kept (e.g. 7d, 36h)")
	fs.Int64Var(&c.MaxDiskBytes, "max-disk-bytes", 0, "safety valve: oldest span/log blocks are deleted above this many bytes (0 = no limit)")
	fs.Int64Var(&c.MaxRequestBytes, "max-request-bytes", 16<<20, "largest OTLP request accepted, before and after decompression")
	fs.StringVar(&c.SLODir, "slo-dir", "", "folder of SLO YAML files loaded on start")
	fs.StringVar(&c.AlertmanagerURL, "alertmanager-url", "", "Alertmanager base URL to notify (API v2)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.Int64Var(&c.MemoryLimitMiB, "memory-limit-mib", 1024, "soft memory limit for the Go runtime (GOMEMLIMIT); 0 leaves it unset")
}

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg serveConfig
	cfg.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := startServer(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return s.Shutdown(context.Background())
}

// server is the running platform.
type server struct {
	log      *slog.Logger
	store    *columnar.Store
	recv     *otlp.Receiver
	slos     *alerting.Registry
	alerts   *alerting.Manager
	http     *http.Server
	httpAddr string
	ready    atomic.Bool
	stoppers []func(context.Context) error // run in reverse order on Shutdown
	down     atomic.Bool
}

func startServer(ctx context.Context, cfg serveConfig) (s *server, err error) {
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	if cfg.MemoryLimitMiB > 0 {
		// A soft limit makes the GC work harder near it instead of letting
		// the heap double: ingest bursts stay within the machine's budget.
		debug.SetMemoryLimit(cfg.MemoryLimitMiB << 20)
	}
	s = &server{log: log}
	started := s // the returns below set s to nil
	defer func() {
		if err != nil {
			started.Shutdown(context.Background())
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The HTTP server comes up first so /healthz answers and /readyz says
	// "not ready" while the WAL replays.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			api.WriteError(w, http.StatusServiceUnavailable, api.ErrUnavailable, errors.New("replaying the write-ahead log"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Profiles, as Prometheus and VictoriaMetrics serve them: the server
	// listens on loopback by default.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	var routes atomic.Pointer[http.ServeMux] // the API, installed once stores are open
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := routes.Load(); m != nil {
			m.ServeHTTP(w, r)
			return
		}
		api.WriteError(w, http.StatusServiceUnavailable, api.ErrUnavailable, errors.New("starting: replaying the write-ahead log"))
	}))
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("--http-addr: %w", err)
	}
	s.httpAddr = ln.Addr().String()
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.http.Serve(ln)
	s.stoppers = append(s.stoppers, s.http.Shutdown)
	log.Info("http listening", "addr", s.httpAddr, "url", "http://"+s.httpAddr)

	st, err := columnar.Open(columnar.Config{Dir: filepath.Join(cfg.DataDir, "columnar"), Retention: cfg.Retention, MaxBytes: cfg.MaxDiskBytes, Registerer: reg, Logger: log})
	if err != nil {
		return nil, err
	}
	s.store = st
	s.stoppers = append(s.stoppers, func(context.Context) error { return st.Close() })

	ms, err := tsdb.Open(tsdb.Config{Dir: filepath.Join(cfg.DataDir, "metrics"), Retention: cfg.Retention, Registerer: reg, Logger: log})
	if err != nil {
		return nil, err
	}
	s.stoppers = append(s.stoppers, func(context.Context) error { return ms.Close() })

	sm, err := spanmetrics.New(spanmetrics.Config{Registerer: reg, Logger: log}, ms.AppendableV2())
	if err != nil {
		return nil, err
	}
	sg, err := servicegraph.New(servicegraph.Config{Registerer: reg, Logger: log}, ms.AppendableV2())
	if err != nil {
		return nil, err
	}
	for _, g := range []interface {
		Start(context.Context) error
		Shutdown(context.Context) error
	}{sm, sg} {
		if err := g.Start(ctx); err != nil {
			return nil, err
		}
		s.stoppers = append(s.stoppers, g.Shutdown)
	}

	pl, err := pipeline.New(pipeline.Config{Traces: st, Logs: st, Metrics: ms, Generators: []pipeline.TraceConsumer{sm, sg}, Registerer: reg, Logger: log})
	if err != nil {
		return nil, err
	}

	promAPI, err := prom.New(prom.Config{Metadata: ms, Registerer: reg, Logger: log}, ms.Queryable(), ms.Appendable())
	if err != nil {
		return nil, err
	}
	sloReg, alerts, err := startAlerting(ctx, s, cfg, promAPI, ms, reg, log)
	if err != nil {
		return nil, err
	}
	s.slos, s.alerts = sloReg, alerts

	// MaxRows bounds the span and log rows a query materialises (each carries
	// its attribute maps, ~1 KiB): it is what keeps a structural TraceQL
	// query over a large range from taking gigabytes.
	lim := api.QueryLimits{MaxSeries: 1000, MaxRows: 1_000_000, Timeout: 30 * time.Second}
	apiMux := http.NewServeMux()
	api.RegisterTraceByID(apiMux, st)
	api.RegisterTraceQueries(apiMux, st, lim)
	api.RegisterLogQueries(apiMux, st, lim)
	promAPI.Register(apiMux)
	smap, err := servicemap.New(servicemap.Config{Engine: promAPI.Engine(), Queryable: ms.Queryable(), Traces: st, Logger: log})
	if err != nil {
		return nil, err
	}
	api.RegisterServices(apiMux, smap)
	api.RegisterSLOs(apiMux, sloReg, alerts)
	api.RegisterAlerts(apiMux, alerts)
	det := investigate.New(investigate.Config{Traces: st, Logs: st, Metrics: promMetrics{engine: promAPI.Engine(), q: ms.Queryable()}, Logger: log})
	api.RegisterInvestigations(apiMux, det, func(ctx context.Context, name string) (string, error) {
		e, err := sloReg.Get(name)
		if err != nil {
			return "", err
		}
		return e.SLO.Service, nil
	})

	recv, err := otlp.New(otlp.Config{GRPCAddr: cfg.OTLPGRPCAddr, HTTPAddr: cfg.OTLPHTTPAddr, MaxRequestBytes: cfg.MaxRequestBytes, Registerer: reg, Logger: log}, pl)
	if err != nil {
		return nil, err
	}
	if err := recv.Start(ctx); err != nil {
		return nil, err
	}
	s.recv = recv
	// Receivers stop first on shutdown, so nothing is accepted that the
	// stores cannot take.
	s.stoppers = append(s.stoppers, recv.Shutdown)
	log.Info("otlp grpc listening", "addr", recv.GRPCAddr())
	log.Info("otlp http listening", "addr", recv.HTTPAddr())

	uiHandler, err := ui.New(ui.Config{Logger: log, Version: versionString()})
	if err != nil {
		return nil, err
	}
	apiMux.Handle("/", uiHandler) // every path outside /api/

	routes.Store(apiMux)
	s.ready.Store(true)
	log.Info("ready")
	return s, nil
}

// Shutdown stops everything in reverse order of start. Safe twice.
func (s *server) Shutdown(ctx context.Context) error {
	if s.down.Swap(true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var errs []error
	for i := len(s.stoppers) - 1; i >= 0; i-- {
		if err := s.stoppers[i](ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
