// Package demo is the demo world: a hybrid serverless ticket-booking
// application on (pretend) AWS, instrumented with the OpenTelemetry Go SDK,
// with a real PostgreSQL as its database, and a peak-sale incident.
//
// The demo is a tenant of the platform, not a part of it: it imports nothing
// from internal/ and talks to the platform only over OTLP/gRPC and HTTP, like
// a customer's application would.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"
)

// Config configures Run. Zero values take the documented defaults.
type Config struct {
	OTLPEndpoint string // host:port of the platform's OTLP/gRPC receiver
	APIURL       string // http://host:port of the platform's HTTP API; unused for now
	DataDir      string // demo state: PostgreSQL data folder, database id, backfill marker

	Scenario      string        // see Scenarios(); default "peak-sale"
	Backfill      time.Duration // history sent on first start; default 6h; negative disables
	IncidentAfter time.Duration // the live incident starts this long after start; default 3m
	Seed          int64

	Sim   bool    // generate the whole world in-process: no PostgreSQL, no HTTP servers
	Speed float64 // sim: N times faster than real time (default 1)
	Rate  float64 // sim: spans per second at normal load (default 200)

	// Tuning knobs, mostly for tests; zero means the default.
	CrashAfter     time.Duration // database crash this long after the incident starts (default 8m)
	SurgeFactor    float64       // peak-sale load multiplier (default 12)
	AcquireTimeout time.Duration // tickets-server pool acquire timeout (default 30s)
	ScaleInterval  time.Duration // ECS autoscaler evaluation period (default 30s)
	MetricInterval time.Duration // CloudWatch-style series period (default 10s)

	Logger *slog.Logger
	Out    io.Writer // one line per component as it starts
	// Ready, when set, is called once every component has started (after
	// the backfill), so the caller can print where to look.
	Ready func()

	pgBinDir string // PostgreSQL's binaries; tests point it elsewhere
}

const (
	defaultBackfill      = 6 * time.Hour
	defaultIncidentAfter = 3 * time.Minute
	defaultCrashAfter    = 8 * time.Minute
	defaultSurge         = 12
	defaultAcquire       = 30 * time.Second
)

func (c *Config) setDefaults() {
	if c.Scenario == "" {
		c.Scenario = "peak-sale"
	}
	if c.Backfill == 0 {
		c.Backfill = defaultBackfill
	}
	if c.IncidentAfter == 0 {
		c.IncidentAfter = defaultIncidentAfter
	}
	if c.Speed <= 0 {
		c.Speed = 1
	}
	if c.Rate <= 0 {
		c.Rate = 200
	}
	if c.CrashAfter == 0 {
		c.CrashAfter = defaultCrashAfter
	}
	if c.SurgeFactor <= 0 {
		c.SurgeFactor = defaultSurge
	}
	if c.AcquireTimeout <= 0 {
		c.AcquireTimeout = defaultAcquire
	}
	if c.ScaleInterval <= 0 {
		c.ScaleInterval = 30 * time.Second
	}
	if c.MetricInterval <= 0 {
		c.MetricInterval = 10 * time.Second
	}
	if c.pgBinDir == "" {
		c.pgBinDir = defaultPGBinDir
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
}

// Scenarios lists the names Config.Scenario accepts, sorted.
func Scenarios() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Run starts the demo world and blocks until ctx is done; then it stops
// everything it started (PostgreSQL included) and returns. A context
// cancellation is not an error.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	if cfg.OTLPEndpoint == "" {
		return errors.New("demo: OTLPEndpoint is required")
	}
	if !cfg.Sim && cfg.DataDir == "" {
		return errors.New("demo: DataDir is required outside --sim")
	}
	mk, ok := scenarios[cfg.Scenario]
	if !ok {
		return fmt.Errorf("demo: unknown scenario %q (have %v)", cfg.Scenario, Scenarios())
	}
	sc := mk(Tuning{SurgeFactor: cfg.SurgeFactor, CrashAfter: cfg.CrashAfter})

	st, err := loadState(cfg.DataDir, cfg.Seed)
	if err != nil {
		return err
	}
	h, err := newHub(cfg.OTLPEndpoint, cfg.Seed)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.shutdown(sctx)
	}()
	fmt.Fprintf(cfg.Out, "otlp: exporting to %s (scenario %s: %s)\n", cfg.OTLPEndpoint, sc.Name(), sc.Describe())

	if !cfg.Sim {
		if err := postgresAvailable(cfg.pgBinDir); err != nil {
			fmt.Fprintf(cfg.Out, "postgres: %v; falling back to --sim\n", err)
			cfg.Sim = true
		}
	}

	start := time.Now()
	if cfg.Backfill > 0 && !st.Backfilled {
		fmt.Fprintf(cfg.Out, "backfill: %s of history (seed %d)\n", cfg.Backfill, cfg.Seed)
		if err := backfill(ctx, h, st, sc, cfg, start); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("demo: backfill: %w", err)
		}
		st.Backfilled = true
		if err := st.save(cfg.DataDir); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if cfg.Sim {
		return runSim(ctx, h, st, sc, cfg, start)
	}
	return runLive(ctx, h, st, sc, cfg, start)
}
