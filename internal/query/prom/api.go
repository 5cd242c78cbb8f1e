// Package prom serves the Prometheus HTTP API (query, query_range, series,
// labels, label values, metadata, format_query, remote write) over the
// PromQL engine and a storage.Queryable, with Prometheus' JSON shapes,
// error types and status codes, so Grafana's Prometheus data source and
// other Prometheus clients work unchanged.
//
// Why not reuse github.com/prometheus/prometheus/web/api/v1: its NewAPI
// takes some forty arguments (scrape target, rule, Alertmanager and
// notification retrievers, a config func, TSDB admin stats...), imports
// scrape, rules, notifier and config, registers on Prometheus' own router,
// and serves /api/v1/metadata from scrape targets, which we do not have.
// The handlers we need are thin, so they are written here, following
// web/api/v1 closely for parameters, messages and codes; PromQL itself and
// the remote-write receiver are Prometheus' own code.
package prom

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// Defaults for Config's zero values, Prometheus' own.
const (
	DefaultTimeout       = 2 * time.Minute
	DefaultMaxSamples    = 50_000_000
	DefaultLookbackDelta = 5 * time.Minute
	// defaultSubqueryStep is the step of a subquery written without one
	// ("[30m:]"): Prometheus uses its global evaluation interval, 1m by
	// default.
	defaultSubqueryStep = time.Minute
)

// Config configures the API and its PromQL engine.
type Config struct {
	// Timeout bounds each query (0: DefaultTimeout). A request's own
	// "timeout" parameter can only shorten it.
	Timeout time.Duration
	// MaxSamples bounds the samples a query may hold in memory at once
	// (0: DefaultMaxSamples).
	MaxSamples int
	// LookbackDelta is how far back an instant selector looks for a sample
	// (0: DefaultLookbackDelta).
	LookbackDelta time.Duration
	// Metadata answers /api/v1/metadata; nil answers with no metadata.
	// *tsdb.Store implements it.
	Metadata MetadataSource
	Logger   *slog.Logger
	// Registerer receives the engine's prometheus_engine_* metrics and the
	// remote-write receiver's (nil: not registered).
	Registerer prometheus.Registerer
}

// MetadataSource returns metric family metadata: family -> entries, for
// one family (metric != "") or all of them, at most limit families when
// limit > 0. The result belongs to the caller.
type MetadataSource interface {
	Metadata(metric string, limit int) map[string][]metadata.Metadata
}

// API is the Prometheus HTTP API. Safe for concurrent use.
type API struct {
	cfg       Config
	logger    *slog.Logger
	engine    *promql.Engine
	parser    parser.Parser
	queryable storage.Queryable
	write     http.Handler
	now       func() time.Time
}

// New builds the API over q (reads) and a (remote write). a must also
// implement storage.AppendableV2, as *tsdb.Store's Appendable() does;
// a may be nil, and then /api/v1/write is not served.
func New(cfg Config, q storage.Queryable, a storage.Appendable) (*API, error) {
	if q == nil {
		return nil, errors.New("prom: a Queryable is required")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxSamples == 0 {
		cfg.MaxSamples = DefaultMaxSamples
	}
	if cfg.LookbackDelta == 0 {
		cfg.LookbackDelta = DefaultLookbackDelta
	}
	if cfg.Timeout < 0 || cfg.MaxSamples < 0 || cfg.LookbackDelta < 0 {
		return nil, fmt.Errorf("prom: negative Timeout, MaxSamples or LookbackDelta in %+v", cfg)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := parser.NewParser(parser.Options{})
	api := &API{
		cfg:       cfg,
		logger:    logger,
		engine:    promql.NewEngine(engineOpts(cfg, logger, p)),
		parser:    p,
		queryable: q,
		now:       time.Now,
	}
	if a != nil {
		h, err := newWriteHandler(logger, cfg.Registerer, a)
		if err != nil {
			return nil, err
		}
		api.write = h
	}
	return api, nil
}

// engineOpts are the engine options of Prometheus' defaults: @ and
// negative offsets on (as in Prometheus since 2.33), delayed __name__
// removal and experimental functions off (feature flags there).
func engineOpts(cfg Config, logger *slog.Logger, p parser.Parser) promql.EngineOpts {
	return promql.EngineOpts{
		Logger:                   logger.With("component", "promql"),
		Reg:                      cfg.Registerer,
		MaxSamples:               cfg.MaxSamples,
		Timeout:                  cfg.Timeout,
		LookbackDelta:            cfg.LookbackDelta,
		NoStepSubqueryIntervalFn: func(int64) int64 { return defaultSubqueryStep.Milliseconds() },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		Parser:                   p,
	}
}

// Engine returns the PromQL engine, shared by SLO rules and the detective
// so that all PromQL runs under the same limits.
func (a *API) Engine() *promql.Engine { return a.engine }

// Parser returns the PromQL parser the engine uses.
func (a *API) Parser() parser.Parser { return a.parser }

// Close releases the engine. Safe to call more than once.
func (a *API) Close() error { return a.engine.Close() }

// Register registers the API's paths on mux. It also registers
// "/api/v1/" as a catch-all that answers unknown API paths with a JSON
// 404, as Prometheus does; more specific patterns registered by other
// handlers (traces, logs, SLOs) still win.
func (a *API) Register(mux *http.ServeMux) {
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		mux.HandleFunc(method+" /api/v1/query", a.query)
		mux.HandleFunc(method+" /api/v1/query_range", a.queryRange)
		mux.HandleFunc(method+" /api/v1/series", a.series)
		mux.HandleFunc(method+" /api/v1/labels", a.labelNames)
		mux.HandleFunc(method+" /api/v1/format_query", a.formatQuery)
	}
	mux.HandleFunc("GET /api/v1/label/{name}/values", a.labelValues)
	mux.HandleFunc("GET /api/v1/metadata", a.metadata)
	mux.HandleFunc("GET /api/v1/status/buildinfo", a.buildInfo)
	if a.write != nil {
		mux.Handle("POST /api/v1/write", a.write)
	}
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, _ *http.Request) {
		respondError(w, &apiError{typ: errorNotFound, err: errors.New("unknown API endpoint")})
	})
}
