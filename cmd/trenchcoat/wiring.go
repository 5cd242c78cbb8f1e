package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/trenchcoat/trenchcoat/internal/alerting"
	"github.com/trenchcoat/trenchcoat/internal/investigate"
	"github.com/trenchcoat/trenchcoat/internal/query/prom"
	"github.com/trenchcoat/trenchcoat/internal/store/tsdb"
)

// startAlerting opens the SLO registry (files under the data dir plus
// --slo-dir) and starts rule evaluation over the metric store.
func startAlerting(ctx context.Context, s *server, cfg serveConfig, promAPI *prom.API, ms *tsdb.Store, reg prometheus.Registerer, log *slog.Logger) (*alerting.Registry, *alerting.Manager, error) {
	var ams []string
	if cfg.AlertmanagerURL != "" {
		ams = strings.Split(cfg.AlertmanagerURL, ",")
	}
	mgr, err := alerting.New(alerting.Config{AlertmanagerURLs: ams, ExternalURL: "http://" + s.httpAddr, Registerer: reg, Logger: log},
		promAPI.Engine(), ms.Queryable(), ms.Appendable())
	if err != nil {
		return nil, nil, err
	}
	var src []string
	if cfg.SLODir != "" {
		src = []string{cfg.SLODir}
	}
	sloReg, err := alerting.NewRegistry(alerting.RegistryConfig{Dir: filepath.Join(cfg.DataDir, "slos"), SourceDirs: src, Logger: log}, mgr)
	if err != nil {
		return nil, nil, err
	}
	if err := mgr.Start(ctx); err != nil {
		return nil, nil, err
	}
	s.stoppers = append(s.stoppers, mgr.Shutdown)
	return sloReg, mgr, nil
}

// promMetrics gives the detective the metric store through PromQL.
type promMetrics struct {
	engine *promql.Engine
	q      storage.Queryable
}

var _ investigate.Metrics = promMetrics{}

func (m promMetrics) FindSeries(ctx context.Context, substr string, start, end time.Time, limit int) ([]map[string]string, error) {
	qr, err := m.q.Querier(start.UnixMilli(), end.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer qr.Close()
	names, _, err := qr.LabelNames(ctx, nil)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []map[string]string
	for _, n := range names {
		vals, _, err := qr.LabelValues(ctx, n, nil)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			if !strings.Contains(v, substr) {
				continue
			}
			set := qr.Select(ctx, false, &storage.SelectHints{Start: start.UnixMilli(), End: end.UnixMilli(), Func: "series"}, labels.MustNewMatcher(labels.MatchEqual, n, v))
			for set.Next() {
				ls := set.At().Labels()
				if seen[ls.String()] {
					continue
				}
				seen[ls.String()] = true
				out = append(out, ls.Map())
				if len(out) >= limit {
					return out, nil
				}
			}
			if err := set.Err(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func (m promMetrics) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]investigate.Series, error) {
	q, err := m.engine.NewRangeQuery(ctx, m.q, nil, query, start, end, step)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	mat, err := res.Matrix()
	if err != nil {
		return nil, fmt.Errorf("range query %q: %w", query, err)
	}
	out := make([]investigate.Series, 0, len(mat))
	for _, s := range mat {
		se := investigate.Series{Labels: s.Metric.Map()}
		for _, p := range s.Floats {
			se.Points = append(se.Points, investigate.Point{T: time.UnixMilli(p.T), V: p.F})
		}
		out = append(out, se)
	}
	return out, nil
}
