// Package tsdb is the metric store: the Prometheus TSDB embedded as a
// library under a directory, with its WAL. OTLP metrics are translated to
// Prometheus series by Prometheus' own OTLP translator (otlp.go), so names,
// suffixes, target_info and job/instance come out exactly as a Prometheus
// server's OTLP receiver makes them.
//
// This package and internal/query/prom are the only ones that import the
// Prometheus server module (tsdb, promql, storage/remote): it costs tens of
// seconds of build time, so other packages take storage.Appendable /
// storage.Queryable from here instead of importing tsdb themselves.
package tsdb

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"
	"go.opentelemetry.io/collector/consumer"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// Defaults for Config's zero values.
const (
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultOutOfOrderWindow is wide because the demo backfills hours of
	// history with past timestamps after live data may already exist, and
	// span-metric generators write samples at span time, which trails the
	// wall clock.
	DefaultOutOfOrderWindow = 7 * 24 * time.Hour
	// defaultLookbackDelta is PromQL's default; the translator uses it to
	// space target_info samples so the series stays visible to queries.
	defaultLookbackDelta = 5 * time.Minute
)

// Config configures the metric store.
type Config struct {
	// Dir holds the TSDB blocks and WAL; created if missing.
	Dir string
	// Retention deletes blocks older than this (0: DefaultRetention).
	Retention time.Duration
	// OutOfOrderWindow accepts samples up to this far behind the newest
	// sample of the store (0: DefaultOutOfOrderWindow; negative: disabled).
	OutOfOrderWindow time.Duration
	// KeepUTF8Names keeps OTLP metric and attribute names as sent
	// ("http.server.request.duration") instead of translating them to
	// classic Prometheus names ("http_server_request_duration_seconds"),
	// like Prometheus' NoTranslation strategy: no escaping, no suffixes.
	KeepUTF8Names bool
	// Registerer receives the self-metrics (nil: not registered), both ours
	// (trenchcoat_metric_store_*) and the TSDB's own (prometheus_tsdb_*).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Store is the embedded metric store. Safe for concurrent use.
type Store struct {
	db       *promtsdb.DB
	logger   *slog.Logger
	settings translatorSettings
	metrics  *metrics
	meta     *metadataIndex
	app      *appendable

	convPool sync.Pool
	d2c      *deltaConverter

	mu     sync.RWMutex // held for reading by writes, for writing by Close
	closed bool

	closeOnce sync.Once
	closeErr  error
}

var _ store.MetricWriter = (*Store)(nil)

// Open opens (or creates) the store under cfg.Dir and replays its WAL.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("tsdb: Config.Dir is required")
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("tsdb: negative retention %s", cfg.Retention)
	}
	if cfg.OutOfOrderWindow == 0 {
		cfg.OutOfOrderWindow = DefaultOutOfOrderWindow
	}
	if cfg.OutOfOrderWindow < 0 {
		cfg.OutOfOrderWindow = 0
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	opts := tsdbOptions(cfg.Retention, cfg.OutOfOrderWindow)
	db, err := promtsdb.Open(cfg.Dir, logger.With("component", "tsdb"), cfg.Registerer, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("tsdb: open %s: %w", cfg.Dir, err)
	}
	s := &Store{
		db:       db,
		logger:   logger,
		settings: newTranslatorSettings(cfg.KeepUTF8Names),
		meta:     newMetadataIndex(),
	}
	s.metrics, err = newMetrics(cfg.Registerer, db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.app = &appendable{db: db, m: s.metrics, meta: s.meta}
	next, err := consumer.NewMetrics(s.appendMetrics)
	if err == nil {
		s.d2c, err = newDeltaConverter(next)
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// tsdbOptions are the TSDB options the store runs with: Prometheus
// server defaults plus the retention and out-of-order window asked for.
// Native histograms need no switch: this TSDB always accepts them.
func tsdbOptions(retention, oooWindow time.Duration) *promtsdb.Options {
	opts := promtsdb.DefaultOptions()
	// The Prometheus server compresses its WAL by default; so do we.
	opts.WALCompression = compression.Snappy
	opts.RetentionDuration = retention.Milliseconds()
	opts.OutOfOrderTimeWindow = oooWindow.Milliseconds()
	// As Prometheus does: blocks grow up to a tenth of the retention (at
	// most 31 days) so retention deletes whole blocks at a fine grain.
	maxBlock := min(retention/10, 31*24*time.Hour)
	if maxBlock > 2*time.Hour {
		opts.MaxBlockDuration = maxBlock.Milliseconds()
	}
	// Exemplars arrive with OTLP points; keep a bounded ring of them.
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = 100_000
	return opts
}

// Appendable returns the store's appender factory, for the span-metrics
// and service-graph generators and the remote-write receiver. The value
// also implements storage.AppendableV2 (the remote-write handler needs it).
// Appends are counted in the self-metrics. Commit writes the WAL before
// returning. Stop every user of it before Close.
func (s *Store) Appendable() storage.Appendable { return s.app }

// AppendableV2 is Appendable for the newer appender interface.
func (s *Store) AppendableV2() storage.AppendableV2 { return s.app }

// Queryable returns the store for reading: PromQL, rules, the detective.
func (s *Store) Queryable() storage.Queryable { return s.db }

// Close flushes and closes the TSDB. Safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		err := s.d2c.shutdown()
		s.closeErr = errors.Join(err, s.db.Close())
	})
	return s.closeErr
}
