package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/trenchcoat/trenchcoat/demo"
	"github.com/trenchcoat/trenchcoat/internal/slo"
)

//go:embed demo_slo.yaml
var demoSLO []byte

// runDemo starts the platform, installs the demo's SLO, then runs the demo
// world against the platform's own OTLP endpoint, like any customer app.
func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var cfg serveConfig
	cfg.register(fs)
	var dc demo.Config
	fs.StringVar(&dc.Scenario, "scenario", "peak-sale", "incident scenario: peak-sale or bad-deploy")
	dc.Backfill = 6 * time.Hour
	fs.Var(durationFlag{&dc.Backfill}, "backfill", "history generated on first start")
	dc.IncidentAfter = 3 * time.Minute
	fs.Var(durationFlag{&dc.IncidentAfter}, "incident-after", "the live incident starts this long after start")
	fs.Int64Var(&dc.Seed, "seed", 1, "seed of the generated world")
	fs.BoolVar(&dc.Sim, "sim", false, "generate the world in-process (no PostgreSQL, no HTTP servers)")
	fs.Float64Var(&dc.Speed, "speed", 1, "with --sim: run N times faster than real time")
	fs.Float64Var(&dc.Rate, "rate", 200, "with --sim: spans per second at normal load")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := startServer(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Shutdown(context.Background())
	def, err := slo.ParseOne(demoSLO)
	if err != nil {
		return fmt.Errorf("BUG: demo SLO: %w", err)
	}
	if _, err := s.slos.Put(def); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("installing the demo SLO: %w", err)
	}
	dc.OTLPEndpoint = s.recv.GRPCAddr()
	dc.APIURL = "http://" + s.httpAddr
	dc.DataDir = filepath.Join(cfg.DataDir, "demo")
	dc.Logger = s.log
	dc.Out = os.Stdout
	dc.Ready = func() { fmt.Printf("open http://%s\n", s.httpAddr) }
	if err := demo.Run(ctx, dc); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return s.Shutdown(context.Background())
}
